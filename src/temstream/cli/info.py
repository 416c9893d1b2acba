"""``temstream info``: a summary of a recording, or of a model checkpoint."""

from __future__ import annotations

import json

from temstream.cli._common import new_parser


def add_parser(sub) -> None:
    p = new_parser(sub, "info", "summarise a temstream recording or a model",
                   "temstream info demo.h5      # or: temstream info default")
    p.add_argument("file", help="a temstream .h5 recording, or a model: a shipped name "
                                "(default, bilayer) or a checkpoint path")
    p.add_argument("--config-text", action="store_true", help="also print the stored config")
    p.set_defaults(func=run)


def _compression(ds) -> str:
    """Names of the HDF5 filters of a dataset (``none`` when stored raw)."""
    plist = ds.id.get_create_plist()
    names = []
    for i in range(plist.get_nfilters()):
        name = plist.get_filter(i)[3].decode(errors="replace").split()[0].lower()
        if name != "shuffle":
            names.append(name)
    return "+".join(names) or "none"


def describe(path) -> str:
    """Human-readable summary of a recording."""
    import hdf5plugin  # noqa: F401
    import numpy as np
    import pandas as pd

    from temstream.record import open_recording, read_frames_info, read_particles

    lines = [f"recording      {path}"]
    with open_recording(path) as f:  # cuts back a tail a killed writer left unreadable
        a = f.attrs
        lines.append(f"format         {a.get('format', '?')} v{a.get('format_version', '?')}, "
                     f"EMD {a.get('version_major', '?')}.{a.get('version_minor', '?')}, "
                     f"temstream {a.get('temstream_version', '?')}")
        lines.append(f"closed cleanly {bool(a.get('closed_cleanly', False))}")
        if getattr(f, "repaired_copy", False):
            lines.append(f"damaged        {a.get('recording_error', 'unreadable tail')}; shown: "
                         "a repaired copy (the file itself is left as it is)")
        for name in f["data"]:
            ds = f["data"][name]["data"]
            comp = _compression(ds)
            lines.append(f"/data/{name:<8} {ds.shape} {ds.dtype} ({comp})")
        px = f["microscope"].attrs.get("pixel_size_nm") if "microscope" in f else None
        lines.append(f"pixel size     {px} nm" if px else "pixel size     unknown")
        model = a.get("model")
        if model:
            lines.append(f"model          {model}")
    info = read_frames_info(path)
    particles = read_particles(path)
    # a row stands for `count` frame indices (a gap in the numbering is one row)
    count = info["count"].astype("int64") if "count" in info else info["status"].map(lambda _: 1)
    status = count.groupby(info["status"]).sum().to_dict()
    dropped = info["status"] == "dropped"
    reasons = count[dropped].groupby(info.loc[dropped, "reason"]).sum().to_dict()
    lines.append(f"frames seen    {int(count.sum())}: processed {status.get('processed', 0)}, "
                 f"dropped {status.get('dropped', 0)} {reasons if reasons else ''}".rstrip())
    processed = info[info["status"] == "processed"]
    if len(processed):
        lat = processed["latency_ms"].to_numpy()
        lat = lat[np.isfinite(lat)]
        if lat.size:
            lines.append(f"latency        p50 {np.percentile(lat, 50):.1f} ms, "
                         f"p99 {np.percentile(lat, 99):.1f} ms")
    if len(processed) and "shift_x" in processed and processed["shift_x"].notna().any():
        quality = processed["quality"].fillna("")
        flags = pd.Series([q for v in quality for q in v.split(",") if q]).value_counts()
        bad = ", ".join(f"{k} {v}" for k, v in sorted(flags.items())) or "none"
        sx, sy = processed["shift_x"], processed["shift_y"]
        sr = processed["search_range"].dropna()
        lines.append(f"registration   shift x {sx.min():+.1f}..{sx.max():+.1f} px, y "
                     f"{sy.min():+.1f}..{sy.max():+.1f} px, stage jumps "
                     f"{int(processed['jump'].sum())}; bad frames {bad}"
                     + (f"; search range {sr.min():.1f}..{sr.max():.1f} px" if len(sr) else ""))
    n_tracks = particles.loc[particles["particle"] >= 0, "particle"].nunique()
    per_frame = len(particles) / max(1, len(processed))
    lines.append(f"particles      {len(particles)} rows, {per_frame:.1f} per frame, "
                 f"{n_tracks} tracks")
    layers = sorted(int(v) for v in particles["layer"].unique() if v > 0) \
        if "layer" in particles else []
    if layers:  # a two-layer model: rows and tracks of each layer
        per = [f"{'ABCD'[k - 1] if k <= 4 else k}: {int((particles['layer'] == k).sum())} rows, "
               f"{particles.loc[(particles['layer'] == k) & (particles['particle'] >= 0), 'particle'].nunique()} tracks"
               for k in layers]
        lines.append(f"layers         {'; '.join(per)}")
    return "\n".join(lines)


def describe_model(name) -> str:
    """Human-readable summary of a model checkpoint: its card, and whether the weights file
    still matches the sha256 the card records (read without torch)."""
    from temstream.models.checkpoints import read_card, resolve, sha256_file

    weights, card_path = resolve(name)
    card = read_card(name)
    arch, tr, m = card.architecture, card.training, card.metrics
    intact = sha256_file(weights) == card.sha256
    params = (f"; {card.extra['parameters']:,} parameters" if "parameters" in card.extra
              else "")
    if getattr(arch, "kind", "") == "denoise":
        head = [f"model          {card.name} ({card_path}): a denoiser (--denoise)",
                f"output         expected counts of the last of {arch.frames} frames",
                f"architecture   U-Net depth {arch.depth}, base width {arch.base}, at 1/"
                f"{arch.shuffle} resolution (pixel unshuffle){params}"]
    else:
        head = [f"model          {card.name} ({card_path})",
                f"classes        {', '.join(card.classes)}",
                f"threshold      {card.threshold:.2f} on P(foreground), chosen on validation",
                f"architecture   U-Net depth {arch.depth}, base width {arch.base}, "
                f"{arch.norm} norm, {arch.upsample} upsampling"
                + (", 3x3 median prefilter" if arch.median_prefilter else "") + params,
                f"tiles          {arch.tile} px with {arch.halo} px overlap above that size"]
    lines = [*head,
             f"weights        {weights.name}, {weights.stat().st_size / 1e6:.1f} MB, sha256 "
             f"{card.sha256[:12]}... " + ("(verified: safetensors whose tensors fit the "
                                          "architecture)" if intact else
                                          "(MISMATCH: damaged or replaced file)")]
    if tr:
        lines.append(f"training       {card.extra.get('command', 'preset ' + str(tr.get('name')))}"
                     f": {tr.get('steps_run', tr.get('steps'))} steps, best at "
                     f"{tr.get('best_step', '?')}, data seed {tr.get('data_seed', tr.get('seed'))}"
                     + (f", {card.extra['train_seconds'] / 60:.0f} min"
                        if "train_seconds" in card.extra else ""))
    scores = [f"{k} {v:.3f}" for k, v in m.items() if isinstance(v, float)]
    if scores:
        lines.append(f"metrics        {', '.join(scores)}")
    return "\n".join(lines)


def _is_recording(path) -> bool:
    """A temstream recording (else a movie file of another kind, or not a movie at all)."""
    import h5py

    if not h5py.is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", "")
    except OSError:
        return True  # ours or not, open_recording says what is wrong with it
    return (fmt.decode() if isinstance(fmt, bytes) else fmt) == "temstream-recording"


def describe_movie(path) -> str:
    """A movie file that is not a recording (TIFF, MRC, DM, EMD from elsewhere...)."""
    from temstream.stream.files import open_movie

    with open_movie(path) as movie:
        h, w = movie.shape
        px = f"{movie.pixel_size_nm:g} nm" if movie.pixel_size_nm else "unknown"
        ft = f"{movie.frame_time_s:g} s" if movie.frame_time_s else "unknown"
        return "\n".join([f"movie          {path} (not a temstream recording)",
                           f"frames         {len(movie)} frames of {h}x{w} "
                           f"{movie.dtype}",
                           f"pixel size     {px}", f"frame time     {ft}"])


def _is_model(name: str) -> bool:
    from pathlib import Path

    from temstream.models.checkpoints import CheckpointError, resolve

    if Path(name).suffix in (".h5", ".hdf5", ".emd", ".hspy"):
        return False
    try:
        resolve(name)
    except CheckpointError:
        return False
    return True


def run(args) -> int:
    from pathlib import Path

    import h5py

    from temstream.cli import UsageError

    if _is_model(args.file):
        from temstream.models.checkpoints import load_checkpoint

        # what `run` checks: the sha256, a safetensors file (never a pickle), tensors that
        # fit the card's architecture; a failure is a one-line error and exit status 2
        load_checkpoint(args.file)
        print(describe_model(args.file))
        return 0
    if not Path(args.file).exists():
        from temstream.models.checkpoints import WEIGHTS_DIR

        shipped = ", ".join(sorted(q.stem for q in WEIGHTS_DIR.glob("*.json")))
        raise UsageError(f"{args.file!r} is neither a file nor a model (shipped: {shipped})")
    if not _is_recording(args.file):
        print(describe_movie(args.file))
        return 0
    print(describe(args.file))
    if args.config_text:
        with h5py.File(args.file, "r") as f:
            print("\n# configuration\n" + f.attrs.get("config", ""))
            summary = f.attrs.get("summary")
            if summary:
                print("# run summary\n" + json.dumps(json.loads(summary), indent=2))
    return 0
