"""Running the model: the executors (SimPy engine, vectorised executor, the choice between them),
the chunks they run and the run record they write.

* :mod:`sim.run.executors` -- ``simulate(..., engine=auto|simpy|vectorised)``;
* :mod:`sim.run.engine` -- the SimPy engine (one process per patient; shared resources);
* :mod:`sim.run.vectorised` -- every patient of a chunk at once (no shared resources);
* :mod:`sim.run.chunk` -- a chunk's baseline arrays and named random streams;
* :mod:`sim.run.record` -- the one run record both executors write, and its frames.
"""
