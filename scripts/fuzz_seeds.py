#!/usr/bin/env python3
"""Packs stores into the fuzz input format of fuzz/fuzz_targets/store_bytes.rs: entries of
[name length u8][name][content length u16 LE][content].

    scripts/fuzz_seeds.py OUT_FILE STORE_DIR
"""
import os
import struct
import sys

out, root = sys.argv[1], sys.argv[2]
parts = []
for d, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        p = os.path.join(d, f)
        name = os.path.relpath(p, root).encode()
        data = open(p, "rb").read()[:65535]
        if len(name) < 256:
            parts.append(bytes([len(name)]) + name + struct.pack("<H", len(data)) + data)
open(out, "wb").write(b"".join(parts))
