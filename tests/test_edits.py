"""The edit protocol: parsing answers, applying search/replace blocks, validating results."""
from __future__ import annotations

import re

import pytest

from cockpit.agents.edits import (
    Edit,
    EditRefused,
    apply_answer,
    apply_edit,
    describe,
    parse_answer,
)

SOURCE = '''\
import math
LEARNING_RATE = 0.01  # step size
BATCH_SIZE = 16


def schedule(step):
    if step < 10:
        return step / 10
    return 1.0
'''


def block(search: str, replace: str, path: str = "train.py") -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def answer(*blocks: str, hypothesis="Higher LR converges faster.", description="LR 0.01 -> 0.02"):
    return f"HYPOTHESIS: {hypothesis}\nDESCRIPTION: {description}\n\n" + "\n".join(blocks)


def apply(text: str, source: str = SOURCE) -> str:
    return apply_answer(parse_answer(text, "train.py"), source, "train.py")


def test_exact_block_applies_and_fields_are_read():
    text = answer(block("LEARNING_RATE = 0.01  # step size\n",
                        "LEARNING_RATE = 0.02  # step size\n"))
    parsed = parse_answer(text, "train.py")
    assert describe(parsed) == ("LR 0.01 -> 0.02", "Higher LR converges faster.")
    assert apply(text) == SOURCE.replace("0.01", "0.02")


def test_several_blocks_in_fences_with_markdown_fields():
    text = ("**Hypothesis:** warmup hurts short runs\n"
            "**Description:** shorter warmup, bigger batch\n"
            "```python\n" + block("BATCH_SIZE = 16\n", "BATCH_SIZE = 32\n") + "```\n"
            "```python\n" + block("    if step < 10:\n        return step / 10\n",
                                  "    if step < 5:\n        return step / 5\n") + "```\n")
    parsed = parse_answer(text, "train.py")
    assert parsed.description == "shorter warmup, bigger batch"
    new = apply(text)
    assert "BATCH_SIZE = 32" in new and "step < 5" in new and "return step / 5" in new


def test_whitespace_tolerant_match_reindents_the_replacement():
    # The model dropped the indentation and added trailing spaces.
    text = answer(block("if step < 10:   \n    return step / 10\n",
                        "if step < 20:\n    return step / 20\n"))
    new = apply(text)
    assert "    if step < 20:\n        return step / 20\n" in new
    assert "step < 10" not in new


def test_trailing_whitespace_and_blank_edges_are_tolerated():
    text = answer(block("\nBATCH_SIZE = 16   \n\n", "BATCH_SIZE = 8\n"))
    assert "BATCH_SIZE = 8\n" in apply(text)


def test_search_text_not_in_file_is_refused_with_its_first_line():
    text = answer(block("WEIGHT_DECAY = 0.1\n", "WEIGHT_DECAY = 0.2\n"))
    with pytest.raises(EditRefused,
                       match=r"block 1: the SEARCH text is not in the file .*WEIGHT_DECAY"):
        apply(text)


def test_ambiguous_search_is_refused():
    source = "A = 1\nB = 2\nA = 1\n"
    with pytest.raises(EditRefused, match="occurs 2 times"):
        apply_edit(source, Edit("train.py", "A = 1\n", "A = 3\n"))


def test_edit_to_another_file_is_refused():
    text = answer(block("VAL_TOKENS = 1000\n", "VAL_TOKENS = 10\n", path="prepare.py"))
    with pytest.raises(EditRefused,
                       match=re.escape("the edits touch prepare.py; only train.py may change")):
        apply(text)


def test_syntax_error_is_refused_with_the_line():
    text = answer(block("BATCH_SIZE = 16\n", "BATCH_SIZE = (16\n"))
    with pytest.raises(EditRefused, match=r"train.py would not parse: .* line \d+"):
        apply(text)


def test_no_change_is_refused():
    text = answer(block("BATCH_SIZE = 16\n", "BATCH_SIZE = 16\n"))
    with pytest.raises(EditRefused, match="unchanged"):
        apply(text)


def test_whole_file_answer_is_the_fallback():
    new_file = SOURCE.replace("BATCH_SIZE = 16", "BATCH_SIZE = 64")
    text = f"HYPOTHESIS: bigger batches\nDESCRIPTION: batch 64\n\n```python\n{new_file}```\n"
    parsed = parse_answer(text, "train.py")
    assert parsed.edits == [] and parsed.whole_file == new_file
    assert apply(text) == new_file


def test_a_snippet_is_not_taken_for_the_whole_file():
    text = "DESCRIPTION: batch 64\n```python\nBATCH_SIZE = 64\n```\n"
    with pytest.raises(EditRefused,
                       match=re.escape("the code block has 1 lines but train.py has 9")):
        apply(text)


@pytest.mark.parametrize("garbage", ["", "I think we should try a bigger model!",
                                     "<<<<<<< SEARCH\nA = 1\n"])
def test_garbage_is_refused_with_what_to_send(garbage):
    with pytest.raises(EditRefused) as info:
        apply(garbage)
    assert "SEARCH" in str(info.value) or "=======" in str(info.value)


def test_missing_description_falls_back_on_the_hypothesis():
    parsed = parse_answer("HYPOTHESIS: Bigger batch helps. More text.\n"
                          + block("BATCH_SIZE = 16\n", "BATCH_SIZE = 32\n"), "train.py")
    assert describe(parsed)[0] == "Bigger batch helps"
    bare = parse_answer(block("BATCH_SIZE = 16\n", "BATCH_SIZE = 32\n"), "train.py")
    with pytest.raises(EditRefused, match="no DESCRIPTION"):
        describe(bare)
