#!/usr/bin/python3
"""A PyTorch trainer doing, per step, the work of one rank of dml's dist_train: the baseline that dml's
training speed is reported against ("same model, batch, sampling, precision and layout").

Run it with Debian's interpreter (/usr/bin/python3: python3-torch 1.13, the libtorch_cpu.so.1.13 that dml
links, so both sides run the same kernels), e.g.

  /usr/bin/python3 launch/torch_trainer.py --data-path data/fashion-mnist --steps 20 --warmup 3 \
      [--precision bf16] [--channels-last] [--json out.json]

The model is dml's own EmbeddingNet, from launch/dml_models.py (build_embedding_net: the same modules and
parameter names as the C++ model), initialised as dml's initialise_reference (src/model/init.cpp: Xavier
uniform, magnitude 2, "avg" fan; zero biases; BatchNorm weight 1, bias 0). One step, as
src/train/trainer.cpp's train_step with one replica on one rank:

  zero_grad      every gradient zeroed in place (dml's Optimizer::zero_grad), network and beta
  data           a class-balanced batch: batch_size / batch_k classes drawn without replacement, batch_k
                 distinct images of each, laid out in class blocks of batch_k rows (GlobalBatchSampler);
                 per image a horizontal flip with p = 0.5 and a random crop_size crop at offsets uniform in
                 0..H-crop (no padding: dml has none; with --crop-size 28 on 28x28 Fashion-MNIST the crop
                 is the whole image, so only the flip remains), gray tiled to 3 channels, into a uint8
                 [B, 3, crop, crop] tensor (src/pipeline/augment.cpp). Images come from the train shards
                 (include/dml/data/SHARD_FORMAT.md), held in memory as one uint8 [N, H, W, C] tensor.
  normalise      float32 (x / 255 - mean) / std, ImageNet mean/std (src/pipeline/normalize.cpp)
  forward        [channels-last input] backbone under torch.autocast('cpu', bfloat16) for bf16 (only the
                 backbone: src/model/embedding_net.cpp), then in float32 with autocast off: mean over H, W,
                 head, x / sqrt(sum x^2 + 1e-10)
  sampling       distance-weighted sampling (src/loss/distance_weighted_sampling.cpp), float32, no grad:
                 D by the expansion |a|^2 + |b|^2 - 2ab, clamped at cutoff 0.5; log-weights of the distance
                 distribution on the (d-1)-sphere; admissible = other class and D < nonzero_loss_cutoff 1.4;
                 per-row max, exp, normalise, the uniform fallbacks; positives: the other batch_k - 1 rows
                 of the anchor's block; one negative per (anchor, positive) by an inverse-CDF draw
                 (cumsum + searchsorted, capped at the row's last positive-probability column)
  loss           margin loss (src/loss/margin_loss.cpp): margin 0.2, learned per-class beta (init 1.2),
                 beta of the anchor's class, relu(margin + d_ap - beta) + relu(margin + beta - d_an),
                 d = sqrt(|x - y|^2 + 1e-8), (sum + nu * sum beta) / active count (0 active -> the sum)
  backward       loss.backward()
  optimiser      MXNet semantics, as src/optim/optimizer.cpp: gradients rescaled by 1 / batch, network by
                 Adam (lr 1e-4, coupled wd 1e-4 added to the rescaled gradient, beta1 0.9, beta2 0.999,
                 eps 1e-7 added to the UNcorrected sqrt(v), bias corrections folded into lr_t), beta by SGD
                 (lr 0.1, momentum 0.9 with lr inside the buffer, no wd). Written with torch._foreach_* ops:
                 the same per-tensor kernels as dml's C++ loop, without a Python call per parameter.

The defaults are the benchmark's settings: resnet18_v1 with the small input stem (--no-small-input-stem
for the ImageNet stem), crop 28, batch 50 = 10 classes x batch_k 5, embedding 128, 2 threads, fp32.
--channels-last: model.to(memory_format=torch.channels_last) (dml converts the 4-d parameters) and the
input batch likewise. --threads: torch.set_num_threads. Timing: every step after --warmup, data sampling and
the host tensor work included (dml's step includes its loader wait); img/s = timed steps * batch / seconds.
--time-phases prints ms per timed step of each phase under dml's --time-phases names (data_wait, forward,
sampling_loss, backward, [allreduce,] optimizer; normalisation is in forward, as in dml). --log-interval N
prints loss, active pairs (positive hinge terms, dml's "active pairs") and ms/step per window of N steps,
warm-up steps included, after the run.

Deliberate differences (none changes the arithmetic of the step, only where it happens or which random
numbers it draws):
  * Data is assembled inline on the training thread; dml's loader threads (--workers) assemble batches ahead
    and the step only waits for them. With in-memory images, a 50-image gather + flip + tiling costs ~0.15 ms
    (+0.15 ms normalising), so this charges the baseline that much; dml's loader thread instead runs beside
    the 2 compute threads on the same cores.
  * Random numbers come from numpy / torch generators, not dml's counter-based RNG keyed by (seed, step):
    the batches, flips, initial weights and drawn negatives differ from dml's, their distributions do not.
  * dml's non-finite check of the gradients and loss (one pass over the gradients, ~6 ms per step for
    resnet18_v1, "finite_check" in its --time-phases) has no counterpart here.
  * glibc malloc keeps its defaults here, as a PyTorch user gets them; dml's trainer tells it to keep freed
    memory (no mmap per large block, no trim), which saves it tens of thousands of page faults per step.
    The same environment (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647) speeds this trainer up too.
  * No evaluation, checkpoint or log record inside the timed steps (dml's log every --log-interval steps is a
    few host reads; its windows are timed without evaluation either).
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dml_models  # noqa: E402  (launch/dml_models.py: dml's EmbeddingNet in PyTorch)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_DISTANCE = 2.0 - 1e-4  # dml's kMaxDistance: upper clip of D inside the logs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-path", required=True, help="directory of dml shards (train-*-of-*.h5)")
    p.add_argument("--train-split", default="train")
    p.add_argument("--model", default="resnet18_v1", choices=dml_models.model_names())
    p.add_argument("--small-input-stem", action=argparse.BooleanOptionalAction, default=True,
                   help="3x3 stride-1 stem, no max-pool (ResNets); on by default, the benchmark's model")
    p.add_argument("--crop-size", type=int, default=28)
    p.add_argument("--in-channels", type=int, default=3, help="model input channels (gray is tiled to 3)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--batch-k", type=int, default=5)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps (after the warm-up)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--lr-beta", type=float, default=0.1, help="<= 0 keeps beta fixed (no beta optimiser)")
    p.add_argument("--momentum", type=float, default=0.9, help="momentum of beta's SGD")
    p.add_argument("--margin", type=float, default=0.2)
    p.add_argument("--beta", type=float, default=1.2, help="initial beta")
    p.add_argument("--nu", type=float, default=0.0)
    p.add_argument("--sampler-cutoff", type=float, default=0.5)
    p.add_argument("--nonzero-loss-cutoff", type=float, default=1.4)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--time-phases", action="store_true",
                   help="print ms per step of each phase, named as dml's --time-phases (timed steps only)")
    p.add_argument("--log-interval", type=int, default=0,
                   help="print loss and active pairs every N steps (after the run: no host reads in the steps)")
    p.add_argument("--json", default="", help="write the result as a JSON object to this file")
    a = p.parse_args(argv)
    if a.batch_size % a.batch_k or a.batch_size // a.batch_k < 2 or a.batch_k < 2:
        p.error("--batch-size must be a multiple of --batch-k holding >= 2 classes, and --batch-k >= 2")
    if a.steps < 1 or a.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    return a


# ---------------------------------------------------------------------------------------------- data

def load_split(data_path, split):
    """All shards of a split -> (uint8 [N, H, W, C] tensor, int64 [N] labels, num_classes)."""
    import h5py  # python3-h5py; only needed here
    files = sorted(glob.glob(os.path.join(data_path, "%s-*-of-*.h5" % split)))
    if not files:
        sys.exit("torch_trainer: no %s-*-of-*.h5 shards in %s" % (split, data_path))
    images, labels, num_classes = [], [], None
    for path in files:
        with h5py.File(path, "r") as f:
            images.append(f["images"][...])
            labels.append(f["labels"][...].astype(np.int64))
            num_classes = int(f.attrs["num_classes"])
    return torch.from_numpy(np.concatenate(images)), np.concatenate(labels), num_classes


class BatchSampler:
    """Class-balanced batches in class blocks, flip + random crop, gray tiled to out_channels (uint8 NCHW)."""

    def __init__(self, images, labels, batch_size, batch_k, crop, out_channels, seed):
        self.images = images  # uint8 [N, H, W, C]
        _, self.height, self.width, self.channels = images.shape
        if crop > min(self.height, self.width):
            sys.exit("torch_trainer: --crop-size %d does not fit %dx%d images" % (crop, self.height, self.width))
        if not (out_channels == self.channels or (self.channels == 1 and out_channels == 3)):
            sys.exit("torch_trainer: %d-channel images for a %d-channel model" % (self.channels, out_channels))
        self.rows_of_class = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
        self.classes = np.array([c for c, rows in enumerate(self.rows_of_class) if len(rows) > 0])
        self.groups, self.k, self.crop, self.out_channels = batch_size // batch_k, batch_k, crop, out_channels
        if self.groups > len(self.classes):
            sys.exit("torch_trainer: %d classes per batch but the split has %d" % (self.groups, len(self.classes)))
        self.rng = np.random.default_rng(seed)

    def next(self):
        classes = self.rng.choice(self.classes, size=self.groups, replace=False)
        rows = np.concatenate([self.rng.choice(self.rows_of_class[c], size=self.k,
                                               replace=len(self.rows_of_class[c]) < self.k) for c in classes])
        n = rows.size
        batch = self.images.index_select(0, torch.from_numpy(rows))  # [B, H, W, C]
        flip = torch.from_numpy(self.rng.random(n) < 0.5)
        batch = torch.where(flip.view(n, 1, 1, 1), batch.flip(2), batch)  # the whole image, before the crop
        if self.crop < self.height or self.crop < self.width:
            y0 = self.rng.integers(0, self.height - self.crop + 1, size=n)
            x0 = self.rng.integers(0, self.width - self.crop + 1, size=n)
            batch = torch.stack([batch[i, y0[i]:y0[i] + self.crop, x0[i]:x0[i] + self.crop] for i in range(n)])
        chw = batch.permute(0, 3, 1, 2)
        if chw.size(1) != self.out_channels:
            chw = chw.expand(n, self.out_channels, self.crop, self.crop)
        labels = torch.from_numpy(np.repeat(classes, self.k).astype(np.int64))
        return chw.contiguous(), labels  # dml's loader hands over a contiguous uint8 [B, C, crop, crop]


def normalize_images(images_u8):
    channels = images_u8.size(1)
    mean = torch.tensor(IMAGENET_MEAN[:channels], dtype=torch.float32).view(1, channels, 1, 1)
    std = torch.tensor(IMAGENET_STD[:channels], dtype=torch.float32).view(1, channels, 1, 1)
    return images_u8.to(torch.float32).div(255.0).sub_(mean).div_(std)


# --------------------------------------------------------------------------------------------- model

def initialise_reference(net):
    """dml's initialise_reference: Xavier uniform, bound sqrt(2 / ((fan_in + fan_out) / 2)), zero biases."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                rf = 1
                for s in m.weight.shape[2:]:
                    rf *= s
                fan_in, fan_out = m.weight.shape[1] * rf, m.weight.shape[0] * rf
                m.weight.uniform_(-math.sqrt(2.0 / ((fan_in + fan_out) / 2.0)),
                                  math.sqrt(2.0 / ((fan_in + fan_out) / 2.0)))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
                m.reset_running_stats()


def embed(net, x, precision, channels_last):
    """EmbeddingNetImpl::forward: autocast around the backbone only, the rest in float32."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fmap = net.backbone(x)
    else:
        fmap = net.backbone(x)
    pooled = fmap.to(torch.float32).mean(dim=[2, 3])
    z = net.head(pooled)
    return z / torch.sqrt(z.pow(2).sum(dim=1, keepdim=True) + 1e-10)


# ------------------------------------------------------------------------------------ sampling, loss

def sample_triplets(embeddings, labels, k, cutoff, nonzero_loss_cutoff, generator):
    """dml::sample_triplets with every row an anchor (one rank: anchor_begin 0, anchor_count N)."""
    with torch.no_grad():
        x = embeddings.detach().to(torch.float32)
        n, dim = x.shape
        sq_norm = x.square().sum(1)
        d2 = (sq_norm.unsqueeze(1) + sq_norm.unsqueeze(0) - 2.0 * torch.mm(x, x.t())).clamp_min(0.0)
        distance = d2.sqrt().clamp_min(cutoff)
        half_d = distance.clamp_max(MAX_DISTANCE) * 0.5
        log_w = (2.0 - dim) * torch.log(half_d * 2.0) - ((dim - 3.0) / 2.0) * (torch.log1p(-half_d) +
                                                                              torch.log1p(half_d))
        other_class = labels.unsqueeze(0).ne(labels.unsqueeze(1))
        admissible = other_class.logical_and(distance.lt(nonzero_loss_cutoff))
        masked_log_w = log_w.masked_fill(admissible.logical_not(), float("-inf"))
        has_admissible = admissible.any(1, keepdim=True)
        row_max = torch.where(has_admissible, masked_log_w.max(1, keepdim=True)[0], torch.zeros_like(log_w[:, :1]))
        weights = (masked_log_w - row_max).exp()
        weights = weights / weights.sum(1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
        rows = torch.arange(n)
        not_self = rows.unsqueeze(0).ne(rows.unsqueeze(1))
        has_other = other_class.any(1, keepdim=True)
        fallback = torch.where(has_other, other_class, not_self).to(torch.float32)
        uniform = fallback / fallback.sum(1, keepdim=True).clamp_min(1.0)
        probs = torch.where(has_admissible, weights, uniform)

        draws = k - 1
        offsets = torch.arange(draws).unsqueeze(0)
        in_block = torch.remainder(rows, k).unsqueeze(1)
        positive = (rows.unsqueeze(1) - in_block) + offsets + offsets.ge(in_block).to(torch.int64)
        cdf = probs.cumsum(1)
        u = torch.rand(n, draws, generator=generator)
        target = u * cdf[:, n - 1:n]
        columns = rows.unsqueeze(0)
        last_positive = torch.where(probs.gt(0.0), columns, torch.zeros_like(columns)).max(1, keepdim=True)[0]
        negative = torch.minimum(torch.searchsorted(cdf, target, right=True), last_positive)
        anchor = rows.unsqueeze(1).expand(n, draws).reshape(-1)
        return anchor, positive.reshape(-1), negative.reshape(-1)


def pair_distance(a, b):
    return ((b - a).square().sum(1) + 1e-8).sqrt()


def margin_loss(x, labels, beta, triplets, margin, nu):
    """MarginLossImpl::terms + normalise with one replica: (loss, active count)."""
    anchor, positive, negative = triplets
    x = x.to(torch.float32)
    x_a = x.index_select(0, anchor)
    d_ap = pair_distance(x_a, x.index_select(0, positive))
    d_an = pair_distance(x_a, x.index_select(0, negative))
    beta_t = beta.index_select(0, labels.index_select(0, anchor))
    beta_reg = nu * beta_t.sum()
    pos = (d_ap - beta_t + margin).clamp_min(0.0)
    neg = (beta_t - d_an + margin).clamp_min(0.0)
    hinge_sum = pos.sum() + neg.sum()
    with torch.no_grad():
        count = (pos.gt(0.0).sum() + neg.gt(0.0).sum()).to(torch.float32)
    loss = torch.where(count.gt(0.0), (hinge_sum + beta_reg) / count.clamp_min(1.0), hinge_sum)
    return loss, count


# ------------------------------------------------------------------------------------------ optimiser

class MxnetAdam:
    """dml's Optimizer (kind adam), MXNet semantics, on a list of parameters that all update every step."""

    def __init__(self, params, lr, wd, rescale, beta1=0.9, beta2=0.999, eps=1e-7):
        self.params = list(params)
        self.lr, self.wd, self.rescale, self.b1, self.b2, self.eps = lr, wd, rescale, beta1, beta2, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        g = torch._foreach_mul(grads, self.rescale)
        if self.wd != 0:
            torch._foreach_add_(g, self.params, alpha=self.wd)
        self.t += 1
        torch._foreach_mul_(self.m, self.b1)
        torch._foreach_add_(self.m, g, alpha=1.0 - self.b1)
        torch._foreach_mul_(self.v, self.b2)
        torch._foreach_addcmul_(self.v, g, g, value=1.0 - self.b2)
        lr_t = self.lr * math.sqrt(1.0 - self.b2 ** self.t) / (1.0 - self.b1 ** self.t)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, value=-lr_t)


class MxnetSgd:
    """dml's Optimizer (kind sgd, wd 0): mom = momentum * mom - lr * rescale * g; w += mom."""

    def __init__(self, params, lr, momentum, rescale):
        self.params = list(params)
        self.lr, self.momentum, self.rescale = lr, momentum, rescale
        self.mom = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        g = torch._foreach_mul([p.grad for p in self.params], self.rescale)
        if self.momentum == 0:
            torch._foreach_add_(self.params, g, alpha=-self.lr)
            return
        torch._foreach_mul_(self.mom, self.momentum)
        torch._foreach_add_(self.mom, g, alpha=-self.lr)
        torch._foreach_add_(self.params, self.mom)


def zero_grad(params):
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        torch._foreach_zero_(grads)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    images, labels_np, num_classes = load_split(a.data_path, a.train_split)
    sampler = BatchSampler(images, labels_np, a.batch_size, a.batch_k, a.crop_size, a.in_channels, a.seed)

    net = dml_models.build_embedding_net(a.model, a.embed_dim, a.in_channels, a.small_input_stem, a.crop_size)
    initialise_reference(net)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.train()
    beta = torch.nn.Parameter(torch.full((num_classes,), a.beta, dtype=torch.float32),
                              requires_grad=a.lr_beta > 0)
    rescale = 1.0 / a.batch_size  # the reference rescales every gradient by 1 / (global batch)
    net_params = [p for p in net.parameters() if p.requires_grad]
    net_opt = MxnetAdam(net_params, a.lr, a.wd, rescale)
    beta_opt = MxnetSgd([beta], a.lr_beta, a.momentum, rescale) if a.lr_beta > 0 else None
    trainable = net_params + ([beta] if beta_opt else [])
    generator = torch.Generator().manual_seed(a.seed)

    losses, counts, seconds = [], [], []
    phases = {}  # dml's phase names (src/train/trainer.cpp); zero_grad is charged to none, as there

    def mark(name, since):
        now = time.perf_counter()
        if a.time_phases:
            phases[name] = phases.get(name, 0.0) + now - since
        return now

    def step():
        t0 = time.perf_counter()
        zero_grad(trainable)
        t = time.perf_counter()
        images_u8, labels = sampler.next()
        t = mark("data_wait", t)
        x = normalize_images(images_u8)
        z = embed(net, x, a.precision, a.channels_last)
        t = mark("forward", t)
        triplets = sample_triplets(z, labels, a.batch_k, a.sampler_cutoff, a.nonzero_loss_cutoff, generator)
        loss, count = margin_loss(z, labels, beta, triplets, a.margin, a.nu)
        t = mark("sampling_loss", t)
        loss.backward()
        t = mark("backward", t)
        net_opt.step()
        if beta_opt:
            beta_opt.step()
        mark("optimizer", t)
        losses.append(loss.detach())
        counts.append(count)
        seconds.append(time.perf_counter() - t0)

    for _ in range(a.warmup):
        step()
    phases.clear()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    elapsed = time.perf_counter() - start

    loss_values = [float(v) for v in losses]
    count_values = [float(v) for v in counts]
    if a.log_interval > 0:
        for i in range(0, len(loss_values), a.log_interval):
            window = slice(i, i + a.log_interval)
            print("torch_trainer: steps %d-%d loss %.4f active pairs %.1f %.1f ms/step" % (
                i + 1, min(i + a.log_interval, len(loss_values)), np.mean(loss_values[window]),
                np.mean(count_values[window]), 1000.0 * np.mean(seconds[window])))
    if a.time_phases:
        print("torch_trainer: phases (ms per step): " + ", ".join(
            "%s %.1f" % (name, 1000.0 * total / a.steps) for name, total in phases.items()))
    ips = a.steps * a.batch_size / elapsed
    ms = 1000.0 * elapsed / a.steps
    tag = a.precision + ("+cl" if a.channels_last else "")
    print("torch_trainer: %s %s batch %d: %.1f img/s, %.1f ms/step over %d steps" % (
        a.model, tag, a.batch_size, ips, ms, a.steps))
    if a.json:
        result = {
            "images_per_sec": ips, "ms_per_step": ms, "steps": a.steps, "warmup": a.warmup,
            "precision": a.precision, "channels_last": a.channels_last, "torch_version": torch.__version__,
            "threads": torch.get_num_threads(), "model": a.model, "batch_size": a.batch_size,
            "batch_k": a.batch_k, "embed_dim": a.embed_dim, "crop_size": a.crop_size,
            "small_input_stem": a.small_input_stem,
            "first_loss": loss_values[0], "last_loss": loss_values[-1],
            "mean_active_pairs": float(np.mean(count_values)),
        }
        if a.time_phases:
            result["phase_ms_per_step"] = {name: 1000.0 * total / a.steps for name, total in phases.items()}
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
