"""Autoscaling (`[apps.scaling]`, CONTRACT section 12): read each signal, decide a count, apply it.

`policy` is the pure decision (as Kubernetes' horizontal pod autoscaler makes it), `signals` reads the queue
depth, `autoscaler` is the per-app loop that feeds the policy from the usage sampler and the signals and asks
the supervisor to scale.
"""
