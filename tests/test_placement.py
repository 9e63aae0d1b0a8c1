"""Placement helpers: out-of-memory recognised and said in one sentence with what to try."""

import torch

from explorer.engine import placement


def one_sentence(text: str) -> bool:
    return text.endswith(".") and "\n" not in text and ". " not in text.rstrip(".")


def test_out_of_memory_is_recognised():
    assert placement.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert placement.is_out_of_memory(MemoryError())
    assert placement.is_out_of_memory(RuntimeError("[enforce fail] DefaultCPUAllocator: not enough memory"))
    assert not placement.is_out_of_memory(RuntimeError("shape mismatch"))


def test_out_of_memory_sentences_say_what_to_try():
    load = placement.load_oom_sentence("Qwen/Qwen2.5-7B", "float32", "cuda")
    step = placement.step_oom_sentence()
    for text in (load, step):
        assert one_sentence(text) and "--bf16" in text and "--device-map auto" in text
    assert "Qwen/Qwen2.5-7B" in load and "float32" in load


def test_max_memory_names_gpus_by_index():
    assert placement.max_memory({"0": "20GiB", "cpu": "60GiB"}) == {0: "20GiB", "cpu": "60GiB"}
    assert placement.as_device(1) == torch.device("cuda", 1)
    assert placement.as_device("cpu") == torch.device("cpu")
