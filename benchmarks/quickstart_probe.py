"""Probe quickstart recipes fast: a plain training loop over the quickstart data, then the full
soft-comparison + MAP evaluation on the held-out contents (I04-I08). Prints the level-word CE and
accuracy of the comparison (and rating) answers every 25 steps, then SRCC/PLCC.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quickstart_probe.py vision=0 b2=0.95 lr=0.003 steps=600 rating=2

Keys (key=value): b2 (AdamW beta2), img/patch (tiny sizes), steps, lr, vision (train the vision
tower), word_only (loss on the answer word only: a diagnostic, not the method), rating (rating
images per pair, 0-2), w (rating loss weight), balance (balanced levels), seed, pair (train the
comparison loss). Needs data/synth_kadid (run the quickstart once). Used for experiments/quickstart.md.
"""
import sys, time, math, torch, random, json
torch.set_num_threads(1)
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.data.mix import MixEntry
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.adapters import configure_trainable
from c2s_lightning.models.encoding import model_inputs
cfg = dict(held="I04,I05,I06,I07,I08", root="data/synth_kadid", b2=0.999, img=32, patch=8, steps=300, lr=2e-3, vision=True, word_only=False, rating=1, w=0.5, balance=True, seed=0, pair=True)
for a in sys.argv[1:]:
    k, v = a.split("="); cfg[k] = type(cfg[k])(v) if not isinstance(cfg[k], bool) else v == "1"
torch.manual_seed(cfg["seed"])
bb = build_backbone("tiny-llava", rating=True, seed=cfg["seed"], image_size=cfg["img"], patch_size=cfg["patch"])
net = configure_trainable(bb.model, mode="full", train_vision=cfg["vision"], train_projector=True); net.train()
spec = MixEntry(name="kadid10k", root=cfg["root"], pairs=4000, split="random", split_options={"test_refs": cfg["held"].split(",")})
dm = ComparisonDataModule([spec], batch_size=32, balance_levels=cfg["balance"], rating_images_per_pair=cfg["rating"], seed=cfg["seed"])
dm.connect(bb.encoder); dm.setup()
params = [p for p in net.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.0, betas=(0.9, cfg["b2"]))
def word_loss(batch, ids):
    out = net(**{k: v for k, v in model_inputs(batch).items() if k not in ("levels", "rating")})
    pos = batch["answer_positions"] - 1
    wl = out.logits[torch.arange(len(pos)), pos][:, torch.tensor(ids)]
    ce = torch.nn.functional.cross_entropy(wl, batch["levels"])
    return (ce if cfg["word_only"] else out.loss), ce.item(), (wl.argmax(-1) == batch["levels"]).float().mean().item()
step, t0 = 0, time.time()
warm = int(0.05 * cfg["steps"])
while step < cfg["steps"]:
    for batch in dm.train_dataloader():
        f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / (cfg["steps"] - warm)))
        for g in opt.param_groups: g["lr"] = cfg["lr"] * f
        loss = 0; logs = []
        if cfg["pair"]:
            l, ce, acc = word_loss(batch, bb.level_token_ids); loss = loss + l; logs += [ce, acc]
        if cfg["rating"]:
            l, ce, acc = word_loss(batch["rating"], bb.rating_token_ids); loss = loss + cfg["w"] * l; logs += [ce, acc]
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
        if step % 25 == 0: print(step, round(time.time() - t0), [round(x, 3) for x in logs], flush=True)
        step += 1
        if step >= cfg["steps"]: break
# eval: soft comparison
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.evaluation.correlations import evaluate_predictions
bank = AnchorBank.from_records(dm.anchor_records("kadid10k", "train"), dataset="kadid10k", split="train", alpha=5, beta=1, rule="min_variance", seed=0)
sc = Compare2Scorer(Comparator(bb), bank, batch_size=64)
recs = dm.eval_records()["kadid10k"]
print("EVAL", cfg, evaluate_predictions(sc.score([r.path for r in recs]).tolist(), [r.mos for r in recs]), round(time.time() - t0))
