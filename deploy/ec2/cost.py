"""Cost per million predictions on EC2 from measured throughput and published prices.

Prices are inputs, not measurements: the defaults are AWS's published on-demand list
prices for Linux in us-east-1 as the author knew them in 2025 (check
https://aws.amazon.com/ec2/pricing/on-demand/ for your region and date). Throughput is
what ``bench/export_bench.py`` measured. An instance type you have not benchmarked
is estimated by scaling the reference figure by its vCPU count, and is marked so:
a Graviton or Sapphire Rapids vCPU is not an EPYC vCPU, so measure before you buy.

    python deploy/ec2/cost.py --fp32 11.2 --int8 41.7 --measured-on "2-vCPU Xeon (AVX-512 VNNI)"
    python deploy/ec2/cost.py --fp32 6.6 --int8 25 --vcpus 2 --instance c7g.large:2:0.0725:5.9:27
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# name, vCPUs, USD per hour: published on-demand list prices (us-east-1, Linux, 2025). Inputs.
PUBLISHED_PRICES = (("c7i.large", 2, 0.08925), ("c7g.large", 2, 0.0725), ("c6i.large", 2, 0.085))


@dataclass(frozen=True)
class Instance:
    name: str
    vcpus: int
    usd_per_hour: float
    fp32: float | None = None  # measured images/s on this type, if any
    int8: float | None = None


@dataclass(frozen=True)
class Row:
    instance: str
    precision: str
    images_per_second: float
    per_vcpu: float
    usd_per_million: float
    source: str  # "measured" or "scaled from reference"


def cost_per_million(usd_per_hour: float, images_per_second: float) -> float:
    """One instance busy all hour: dollars for 1e6 predictions at this throughput."""
    return usd_per_hour / (images_per_second * 3600) * 1e6


def parse_instance(text: str) -> Instance:
    """NAME:VCPUS:USD_PER_HOUR[:FP32_IMG_S:INT8_IMG_S]"""
    parts = text.split(":")
    if len(parts) not in (3, 5):
        raise argparse.ArgumentTypeError(f"expected NAME:VCPUS:USD_PER_HOUR[:FP32:INT8], got {text!r}")
    rates = [float(p) for p in parts[3:]] or [None, None]
    return Instance(parts[0], int(parts[1]), float(parts[2]), *rates)


def rows(instances: list[Instance], ref: dict[str, float], ref_vcpus: int) -> list[Row]:
    out = []
    for inst in instances:
        for precision, reference in ref.items():
            measured = getattr(inst, precision)
            rate = measured if measured is not None else reference / ref_vcpus * inst.vcpus
            source = "measured" if measured is not None else "scaled from reference"
            out.append(
                Row(inst.name, precision, rate, rate / inst.vcpus, cost_per_million(inst.usd_per_hour, rate), source)
            )
    return out


def format_table(table: list[Row], prices: dict[str, float]) -> str:
    lines = [
        "| instance | $/hour (input) | precision | images/s | images/s per vCPU | $ per 1M predictions | throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r.instance} | {prices[r.instance]:g} | {r.precision.upper()} | {r.images_per_second:.1f} | "
            f"{r.per_vcpu:.1f} | {r.usd_per_million:.2f} | {r.source} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fp32", type=float, required=True, help="reference FP32 images/s (bench/export_bench.py)")
    p.add_argument("--int8", type=float, required=True, help="reference INT8 images/s")
    p.add_argument("--vcpus", type=int, default=2, help="vCPUs of the machine that measured the reference")
    p.add_argument("--measured-on", default="", help="the reference machine, printed with the table")
    p.add_argument(
        "--instance",
        type=parse_instance,
        action="append",
        help="NAME:VCPUS:USD_PER_HOUR[:FP32:INT8]; replaces the published defaults",
    )
    args = p.parse_args(argv)
    instances = args.instance or [Instance(*row) for row in PUBLISHED_PRICES]
    table = rows(instances, {"fp32": args.fp32, "int8": args.int8}, args.vcpus)
    ref = f"reference: FP32 {args.fp32} img/s, INT8 {args.int8} img/s on {args.vcpus} vCPUs {args.measured_on}"
    print(ref.rstrip())
    print(format_table(table, {i.name: i.usd_per_hour for i in instances}))


if __name__ == "__main__":
    main()
