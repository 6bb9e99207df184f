"""Download the onnx wheel and extract its backend node tests (for `cargo xtask onnx-conformance`).

Only `onnx/backend/test/data/node/**` is extracted, into OUT (one directory per test). The
extraction goes to a temporary directory first and is renamed into place, so OUT is either
complete or absent; a `.complete` file names the onnx version it came from.
"""

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PREFIX = "onnx/backend/test/data/node/"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True, help="onnx version, e.g. 1.22.0")
    ap.add_argument("--wheels", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()

    args.wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"onnx-{args.version}-cp311-cp311-*manylinux*x86_64*.whl"
    found = sorted(args.wheels.glob(pattern))
    if not found:
        print(f"downloading onnx=={args.version} (cp311, manylinux x86_64)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
             "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
             "--platform", "manylinux_2_28_x86_64", f"onnx=={args.version}", "-d", str(args.wheels)],
            check=True,
        )
        found = sorted(args.wheels.glob(pattern))
    if not found:
        sys.exit(f"no onnx {args.version} wheel in {args.wheels} after pip download")

    out: Path = args.out
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    n_files = 0
    tests = set()
    with zipfile.ZipFile(found[0]) as z:
        for info in z.infolist():
            if not info.filename.startswith(PREFIX) or info.is_dir():
                continue
            rel = info.filename[len(PREFIX):]
            parts = rel.split("/")
            if any(p in ("", ".", "..") for p in parts):
                sys.exit(f"refusing suspicious path in wheel: {info.filename}")
            dest = tmp.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(z.read(info))
            tests.add(parts[0])
            n_files += 1
    (tmp / ".complete").write_text(f"onnx=={args.version}\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"extracted {n_files} files of {len(tests)} node tests into {out}", flush=True)


if __name__ == "__main__":
    main()
