"""Experiment tracking: each run's loss curve and result where researchers already look.

Every session writes TensorBoard event files (`tensorboard --logdir .cockpit/<tag>`), and,
where [tracking] asks for them, W&B runs (offline by default) and MLflow runs (a file store
under the session's folder by default), each through the tool's own library.

The exporter is never in the research loop's way: it is a process of its own, started
beside the session (`companion`), that follows the session's journal on disk
(`exporter`), reads each finished experiment's loss curve from its run's log (`records`)
and hands it to each tracker (`sinks`: TensorBoard; `services`: W&B, MLflow). A marker
says what each tracker was given, so a resumed session repeats nothing. A tracker that
fails (its library missing, a disk error, a bad setting) is said once, in one line on the
session's stderr (its log in the background), and the research goes on.
"""
