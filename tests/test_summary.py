from cockpit.runners.outcome import failure_reason, find_value, metric_value, parse_summary

REFERENCE = """step 00953 (100.0%) | loss: 2.912345 | lrm: 0.00 | dt: 312ms\r
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
"""


def test_reference_summary_block():
    s = parse_summary(REFERENCE)
    assert s["val_bpb"] == 0.9979 and s["peak_vram_mb"] == 45060.2 and s["depth"] == 8
    assert len(s) == 9


def test_last_block_wins_and_missing_block_is_empty():
    assert parse_summary("---\nval_bpb: 2.0\n---\nval_bpb: 1.5\n")["val_bpb"] == 1.5
    assert parse_summary("no summary here\n") == {}


def test_nan_and_missing_metric_are_not_values():
    assert metric_value(parse_summary("---\nval_bpb: nan\n"), "val_bpb") is None
    assert metric_value(parse_summary("---\nval_bpb: inf\n"), "val_bpb") is None
    assert metric_value({}, "val_bpb") is None


def test_failure_reason_finds_the_error_line():
    log = ("step 1 | loss: 3\rstep 2 | loss: 3\nTraceback (most recent call last):\n"
           "  File x\nValueError: bad shape\n")
    assert failure_reason(log) == "ValueError: bad shape"
    assert find_value("data_fingerprint: abc123\n", "data_fingerprint") == "abc123"
