"""The models of the GPU benchmark, with random weights (nothing is downloaded).

A model is built from a seed, so every process that builds it with the same seed gets the same
weights: outputs can be compared across runs with and without libfikit. Each model has a `forward`
that returns a small output tensor (the part a server would send back), so copying it to the host
stays cheap.
"""

import torch

MODELS = ("resnet50", "mobilenet_v3", "bert-base", "gpt2-small")
IMAGE_MODELS = ("resnet50", "mobilenet_v3")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _vision(name):
    import torchvision

    if name == "resnet50":
        return torchvision.models.resnet50(weights=None)
    return torchvision.models.mobilenet_v3_large(weights=None)


def _text(name):
    import transformers as tf

    if name == "bert-base":
        return tf.BertModel(tf.BertConfig())  # bert-base-uncased shape: 12 layers, 768 wide
    return tf.GPT2LMHeadModel(tf.GPT2Config())  # gpt2 (small): 12 layers, 768 wide


def _calibrate_batchnorm(model, seed):
    """Set BatchNorm running statistics from random images, on the CPU (deterministic). Freshly
    initialised statistics (mean 0, variance 1) let activations shrink layer after layer: MobileNetV3
    would output ~1e-10, zero in fp16, and every output comparison would pass vacuously."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    g = torch.Generator().manual_seed(seed + 2)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, 224, 224, generator=g))


def build(name, dtype="fp16", seed=0, device="cuda", train=False):
    """Return the model `name` on `device` in `dtype`, its weights drawn from `seed`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    torch.manual_seed(seed)
    model = _vision(name) if name in IMAGE_MODELS else _text(name)
    if name in IMAGE_MODELS and not train:
        _calibrate_batchnorm(model, seed)
    model = model.to(device=device, dtype=DTYPES[dtype])
    return model.train() if train else model.eval()


def make_inputs(name, batch, count, seed=0, seq=128, dtype="fp16", pin=True):
    """Return `count` distinct input batches in host memory, pinned for fast copies (request i
    uses i % count)."""
    g = torch.Generator().manual_seed(seed + 1)
    out = []
    for _ in range(count):
        if name in IMAGE_MODELS:
            x = torch.randn(batch, 3, 224, 224, generator=g).to(DTYPES[dtype])
        else:
            vocab = 30522 if name == "bert-base" else 50257
            x = torch.randint(0, vocab, (batch, seq), generator=g)
        out.append(x.pin_memory() if pin else x)
    return out


def forward(name, model, x):
    """Run one batch; return the small output a server would return."""
    if name in IMAGE_MODELS:
        return model(x)  # logits [batch, 1000]
    if name == "bert-base":
        return model(input_ids=x, attention_mask=None).last_hidden_state[:, 0]  # [CLS] [batch, 768]
    return model(input_ids=x, use_cache=False).logits[:, -1]  # next-token logits [batch, vocab]
