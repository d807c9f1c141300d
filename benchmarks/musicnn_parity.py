"""Parity of audiorec's MusiCNN port with the original musicnn package under TensorFlow.

Two interpreters take part, so TensorFlow never enters the project's environment:

1. In a separate venv with TensorFlow and the musicnn wheel installed *without* its
   dependencies (see docs/musicnn.md, "Parity"), run the original extractor:

       python benchmarks/musicnn_parity.py audio  /tmp/parity/clips --n 8
       python benchmarks/musicnn_parity.py audio  /tmp/parity/loud --n 2 --gain 0.9
       /work/venvs/musicnn-tf/bin/python benchmarks/musicnn_parity.py reference /tmp/parity/clips \\
           --variant MSD_musicnn --out /tmp/parity/ref_MSD.npz

   `reference` calls `musicnn.extractor.extractor(file, model=..., extract_features=True)` on
   every file, exactly as musicnn's README shows, and stores the waveform librosa decoded
   for it, the per-patch taggram / mean_pool / max_pool / penultimate, and whether its
   float16 mel spectrogram overflowed.

2. In the project venv, run the port on the very same waveforms and compare patch by patch:

       PYTHONPATH=src python benchmarks/musicnn_parity.py compare /tmp/parity/ref_MSD.npz --variant MSD_musicnn

`net-reference` (TensorFlow side) writes the small network-level fixture used by
tests/unit/test_musicnn.py (TF outputs for fixed log-mel patches); `net-inputs` (project
side) makes those patches.

This file imports only numpy at module level: the TF side must not need torch or audiorec.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LAYERS = ("mean_pool", "max_pool", "penultimate", "taggram")


# --------------------------------------------------------------------------- TensorFlow side


def run_reference(audio_dir: Path, variant: str, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import librosa
    from musicnn import configuration, extractor

    files = sorted(p for p in Path(audio_dir).iterdir() if p.suffix in (".mp3", ".wav", ".flac", ".ogg"))
    arrays: dict[str, np.ndarray] = {"files": np.array([p.name for p in files])}
    for i, path in enumerate(files):
        wave, _ = librosa.load(str(path), sr=configuration.SR)  # what batch_data decodes
        with np.errstate(over="ignore"):
            batch, spec = extractor.batch_data(str(path), 187, 187)
        taggram, _, feats = extractor.extractor(str(path), model=variant, extract_features=True)
        arrays[f"{i}/wave"] = wave.astype(np.float32)
        arrays[f"{i}/mel_overflow"] = np.array(not np.isfinite(spec).all())
        arrays[f"{i}/taggram"] = np.asarray(taggram, np.float32)
        for layer in ("mean_pool", "max_pool", "penultimate"):
            arrays[f"{i}/{layer}"] = np.asarray(feats[layer], np.float32)
        print(f"{path.name}: {taggram.shape[0]} patches, mel overflow: {bool(arrays[f'{i}/mel_overflow'])}", file=sys.stderr)
    np.savez_compressed(out, **arrays)


def run_net_reference(inputs: Path, out: Path) -> None:
    """TF outputs of both variants for the log-mel patches in `inputs` (built like musicnn's graph)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import musicnn
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    patches = np.load(inputs)["patches"].astype(np.float32)
    arrays: dict[str, np.ndarray] = {"patches": np.load(inputs)["patches"]}
    for variant in ("MSD_musicnn", "MTT_musicnn"):
        tf.compat.v1.reset_default_graph()
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, mean_pool, max_pool, penultimate = models.define_model(x, is_training, variant, 50)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            # restore without musicnn's bare `except:`, so a failed restore cannot go unnoticed
            tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(musicnn.__file__), variant) + "/")
            got = sess.run([tf.nn.sigmoid(y), mean_pool, max_pool, penultimate], {x: patches, is_training: False})
        for layer, value in zip(("taggram", "mean_pool", "max_pool", "penultimate"), got, strict=True):
            arrays[f"{variant}/{layer}"] = value.astype(np.float32)
    np.savez_compressed(out, **arrays)


# --------------------------------------------------------------------------- project side


def make_net_inputs(out: Path) -> None:
    """Two log-mel patches of a synthetic clip (float16 to keep the fixture small; both
    sides cast the same float16 values to float32)."""
    sys.path.insert(0, str(HERE.parent / "src"))
    sys.path.insert(0, str(HERE))
    import torch
    from musicnn_audio import synth_clip

    from audiorec.audio.mel import MelSpectrogram, log_compress

    wave = synth_clip(7, seconds=6.0, sr=16000, gain=0.05)
    mel = log_compress(MelSpectrogram(16000, 512, 256, 96)(torch.from_numpy(wave)[None]))[0]
    patches = mel[: 2 * 187].reshape(2, 187, 96).numpy().astype(np.float16)
    np.savez_compressed(out, patches=patches)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-300)


def run_compare(ref: Path, variant: str, weights_dir: str | None) -> int:
    sys.path.insert(0, str(HERE.parent / "src"))
    from audiorec.backends.musicnn import MusiCNNBackend, embed_clip

    spec = {"type": "musicnn", "variant": variant}
    if weights_dir:
        spec["weights_dir"] = weights_dir
    backend = MusiCNNBackend(spec)
    backend.load("cpu")
    data = np.load(ref)
    files = list(data["files"])
    rows = []
    cos_all: dict[str, list[np.ndarray]] = {layer: [] for layer in LAYERS}
    overflowed = []
    stale_penultimate: list[str] = []
    for i, name in enumerate(files):
        ours = embed_clip(backend, data[f"{i}/wave"])
        if bool(data[f"{i}/mel_overflow"]):
            theirs = data[f"{i}/penultimate"]
            overflowed.append(
                f"| {name} | original: float16 mel overflowed; its penultimate is "
                f"{'NaN' if np.isnan(theirs).any() else 'finite'}, per-patch spread {np.nanstd(theirs, axis=0).mean():.2e} "
                f"| port: finite {bool(np.isfinite(ours['penultimate']).all())}, spread {ours['penultimate'].std(0).mean():.2e} |"
            )
            continue
        for layer in LAYERS:
            theirs = data[f"{i}/{layer}"].reshape(-1, ours[layer].shape[1])
            if theirs.shape != ours[layer].shape:
                print(f"{name}: {layer} has {theirs.shape[0]} patches in the original, {ours[layer].shape[0]} here")
                return 1
            mine = ours[layer]
            if layer == "penultimate" and len(theirs) > 1 and bool((theirs == theirs[0]).all()):
                # musicnn 0.1.0 (PyPI) returns patch 0's penultimate for every patch (a stale
                # variable in its batch loop, fixed on GitHub after the release): compare patch 0.
                stale_penultimate.append(name)
                theirs, mine = theirs[:1], mine[:1]
            cos = cosine_rows(mine, theirs)
            cos_all[layer].append(cos)
            rows.append((name, layer, len(cos), cos.min(), float(np.abs(mine - theirs).max())))
    print(f"### {variant}: per-patch cosine, port vs original extractor\n")
    print("| layer | clips | patches | min cosine | 1 - min cosine | mean cosine | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    worst = 1.0
    for layer in LAYERS:
        if not cos_all[layer]:
            continue
        c = np.concatenate(cos_all[layer])
        diff = max(r[4] for r in rows if r[1] == layer)
        worst = min(worst, float(c.min()))
        print(
            f"| {layer} | {len(cos_all[layer])} | {c.size} | {c.min():.7f} | {1 - c.min():.1e} | {c.mean():.7f} | {diff:.3g} |"
        )
    if stale_penultimate:
        print(
            f"\nThe reference repeats patch 0's penultimate for every patch in {len(stale_penultimate)} clips "
            "(musicnn 0.1.0 extractor bug): only patch 0 was compared for that layer."
        )
    if overflowed:
        print("\nClips too loud for the original (not compared):\n")
        print("| clip | original | port |\n|---|---|---|")
        print("\n".join(overflowed))
    return 0 if worst >= 0.999 else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("audio", help="write synthetic 44.1 kHz mp3 clips")
    a.add_argument("folder", type=Path)
    a.add_argument("--n", type=int, default=8)
    a.add_argument("--seconds", type=float, default=30.0)
    a.add_argument("--gain", type=float, default=0.05)
    a.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("reference", help="(TensorFlow venv) run the original extractor on every clip")
    r.add_argument("folder", type=Path)
    r.add_argument("--variant", default="MSD_musicnn")
    r.add_argument("--out", type=Path, required=True)
    n = sub.add_parser("net-reference", help="(TensorFlow venv) TF outputs for the fixed patches")
    n.add_argument("inputs", type=Path)
    n.add_argument("--out", type=Path, required=True)
    i = sub.add_parser("net-inputs", help="write the fixed log-mel patches")
    i.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare", help="(project venv) compare the port with a reference file")
    c.add_argument("ref", type=Path)
    c.add_argument("--variant", default="MSD_musicnn")
    c.add_argument("--weights-dir", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "audio":
        sys.path.insert(0, str(HERE))
        from musicnn_audio import write_clips

        for p in write_clips(args.folder, args.n, args.seconds, args.gain, seed=args.seed):
            print(p)
        return 0
    if args.cmd == "reference":
        run_reference(args.folder, args.variant, args.out)
        return 0
    if args.cmd == "net-reference":
        run_net_reference(args.inputs, args.out)
        return 0
    if args.cmd == "net-inputs":
        make_net_inputs(args.out)
        return 0
    return run_compare(args.ref, args.variant, args.weights_dir)


if __name__ == "__main__":
    raise SystemExit(main())
