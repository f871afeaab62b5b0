#!/usr/bin/env python3
"""Medians over a benchmark's rounds, and ratios between what it ran.

    medians.py ROWS KEYS REF [REF ...]

ROWS is a file of lines `LABEL KEY VALUE KEY VALUE ...` (numbers), one per run of LABEL.
Prints, for each label in the order it first appears, the median of each key over its
rows; then, for each REF, every other label's ratio to it for each of KEYS (comma-separated;
a key either side lacks is left out). Used by Benchmarks/large/run.sh and
Benchmarks/unbatched/run.sh.
"""
import statistics
import sys

rows_path, keys, refs = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
rows = [line.split() for line in open(rows_path) if line.strip() and not line.startswith("#")]
medians = {}
for label in dict.fromkeys(row[0] for row in rows):
    runs = [dict(zip(row[1::2], map(float, row[2::2]))) for row in rows if row[0] == label]
    medians[label] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    shown = " ".join(f"{key} {value:.0f}" if abs(value) >= 100 or value == int(value) else f"{key} {value:.2f}"
                     for key, value in medians[label].items())
    print(f"median {label} {shown} ({len(runs)} rounds)")
for ref in refs:
    for label, values in medians.items():
        both = [key for key in keys if key in values and medians.get(ref, {}).get(key)]
        if label != ref and both:
            print(f"ratio {label}_over_{ref} " + " ".join(f"{key} {values[key] / medians[ref][key]:.2f}" for key in both))
