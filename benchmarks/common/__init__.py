"""The reusable parts of the benchmarks: the fields (:mod:`.fields`), the workloads
(:mod:`.workload`), one training step of a task (:mod:`.task_step`) and the regression gate's
cases and thresholds (:mod:`.gate`).  The scripts and the pytest-benchmark files beside this
package import them; they time through :mod:`fdebench.measure`."""
