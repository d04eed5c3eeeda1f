"""The clinical logic, once: what happens on a line (:mod:`sim.kernel.line`) and a patient's way
through a strategy (:mod:`sim.kernel.pathway`), over arrays of patients, and what a wait for a shared
resource does to a patient (:mod:`sim.kernel.waiting`). No SimPy and no frames:
both executors (:mod:`sim.run`) drive these functions and read the same named streams."""
