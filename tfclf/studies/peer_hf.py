"""The Hugging Face transformers + PyTorch peer of `python -m tfclf.bench --peer hf`.

Runs as a script in an environment that has `torch` and `transformers` (never tfclf's own: it imports
neither tfclf nor TensorFlow), on the split the benchmark wrote:

    PEER_PYTHON tfclf/studies/peer_hf.py SPEC.json

SPEC.json holds the checkpoint directory, the train/test texts and label ids, batch size, sequence
cap, epochs, learning rate, warm-up ratio, weight decay, clip norm, seed and precision. The recipe is
a careful Hugging Face user's: fast tokenizer applied once up front, shuffled batches padded to their
longest text (DataCollatorWithPadding's dynamic padding), AdamW with linear warm-up and decay, no decay
on biases and LayerNorm, gradient clipping, `torch.autocast("cpu", dtype=torch.bfloat16)` for bf16.
Only the training loop is timed (no tokenization, no evaluation). The last line printed is JSON.
"""
import json
import sys
import time

import numpy as np
import torch
import transformers


def batches(ids: list, order, batch_size: int, pad_id: int):
    """(input_ids, attention_mask, positions) per batch of `order`, padded to the batch's longest text."""
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        longest = max(len(ids[i]) for i in chosen)
        input_ids = torch.full((len(chosen), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chosen), longest), dtype=torch.long)
        for row, i in enumerate(chosen):
            input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
            mask[row, :len(ids[i])] = 1
        yield input_ids, mask, chosen


def macro_f1(labels, predictions, num_classes: int) -> float:
    scores = []
    for k in range(num_classes):
        tp = np.sum((predictions == k) & (labels == k))
        fp, fn = np.sum((predictions == k) & (labels != k)), np.sum((predictions != k) & (labels == k))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def optimizer_and_schedule(model, spec: dict, total_steps: int):
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
               "weight_decay": spec["weight_decay"]},
              {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
               "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=spec["lr"], eps=1e-6)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, int(round(spec["warmup_ratio"] * total_steps)), total_steps)
    return optimizer, schedule


def train(model, ids, labels, spec: dict, pad_id: int) -> tuple:
    """The timed training loop; returns training examples per second and tokens carried per text."""
    rng = np.random.default_rng(spec["seed"])
    steps = -(-len(ids) // spec["batch_size"]) * spec["epochs"]
    optimizer, schedule = optimizer_and_schedule(model, spec, steps)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec["precision"] == "bfloat16")
    labels = torch.tensor(labels)
    model.train()
    carried = 0
    start = time.perf_counter()
    for _ in range(spec["epochs"]):
        for input_ids, mask, chosen in batches(ids, rng.permutation(len(ids)), spec["batch_size"], pad_id):
            carried += input_ids.numel()
            with autocast:
                loss = model(input_ids=input_ids, attention_mask=mask, labels=labels[chosen]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip_norm"])
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return len(ids) * spec["epochs"] / seconds, carried / (len(ids) * spec["epochs"])


def predict(model, ids, spec: dict, pad_id: int):
    """Argmax class per text, and inference examples per second (batches of infer_batch, dynamic padding)."""
    model.eval()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec["precision"] == "bfloat16")
    predictions = np.zeros(len(ids), dtype=np.int64)
    start = time.perf_counter()
    with torch.inference_mode(), autocast:
        for input_ids, mask, chosen in batches(ids, np.arange(len(ids)), spec["infer_batch"], pad_id):
            predictions[chosen] = model(input_ids=input_ids, attention_mask=mask).logits.argmax(-1).numpy()
    return predictions, len(ids) / (time.perf_counter() - start)


def main(spec_path: str) -> dict:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    torch.manual_seed(spec["seed"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(spec["checkpoint"])
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        spec["checkpoint"], num_labels=spec["num_classes"])

    def encode(texts):
        return tokenizer(texts, truncation=True, max_length=spec["seq_len"])["input_ids"]
    train_ids, test_ids = encode(spec["train_texts"]), encode(spec["test_texts"])
    train_rate, carried = train(model, train_ids, spec["train_labels"], spec, tokenizer.pad_token_id)
    predict(model, test_ids[:spec["infer_batch"]], spec, tokenizer.pad_token_id)  # warm-up
    predictions, infer_rate = predict(model, test_ids, spec, tokenizer.pad_token_id)
    return {"peer": "hf", "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "precision": spec["precision"],
            "train_examples_per_sec": train_rate, "infer_examples_per_sec": infer_rate,
            "test_macro_f1": macro_f1(np.asarray(spec["test_labels"]), predictions, spec["num_classes"]),
            "mean_tokens": float(np.mean([len(i) for i in train_ids])), "tokens_carried": carried}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
