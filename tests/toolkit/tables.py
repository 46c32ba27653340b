"""Three tables as teams have them, made here (seeded): categories, missing values, identifiers,
odd CSV dialects; and a Parquet twin of the first. The README's "Real tables" steps run on them.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import random
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Made:
    """A table written to ``path``, its label column, and raw rows to score (with nulls)."""

    path: Path
    target: str
    raw: list[dict[str, object]]  # feature values as a client sends them: strings, None


def passengers(folder: Path, rows: int = 400) -> Made:
    """Categories and missing values in several columns, an identifier and a free-text column."""
    rng = random.Random(7)
    path = folder / "passengers.csv"
    with path.open("w", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(
            ["passenger_id", "name", "sex", "embarked", "pclass", "age", "fare", "survived"]
        )
        for i in range(rows):
            sex = rng.choice(["female", "male"])
            pclass = rng.choice([1, 2, 3])
            age = round(rng.uniform(1, 80), 1)
            fare = round(rng.uniform(5, 120) / pclass, 2)
            embarked = rng.choice(["S", "C", "Q", ""])  # empty: missing
            saved = (sex == "female" and pclass < 3) or age < 10 or (pclass == 1 and age < 40)
            survived = "yes" if saved != (rng.random() < 0.05) else "no"  # 5 % label noise
            out.writerow(
                [
                    1000 + i,
                    f"Passenger {rng.randrange(10**6)} {i}",
                    sex,
                    embarked,
                    pclass,
                    "NA" if rng.random() < 0.15 else age,
                    fare,
                    survived,
                ]
            )
    raw: list[dict[str, object]] = [
        {"sex": "female", "embarked": None, "pclass": 1, "age": None, "fare": 50.0},
        {"sex": "male", "embarked": "S", "pclass": 3, "age": 30.0, "fare": 8.0},
    ]
    return Made(path, "survived", raw)


def census(folder: Path, rows: int = 400) -> Made:
    """Written with ', ' between fields, '?' for missing, and quoted commas inside a value."""
    rng = random.Random(11)
    path = folder / "census.csv"
    classes = ["Private", "Self-emp, not inc", "Government", "?"]
    with path.open("w", newline="") as stream:
        stream.write("age, workclass, education_num, hours_per_week, sex, income\n")
        for _ in range(rows):
            age = rng.randint(18, 80)
            work = rng.choice(classes)
            education = rng.randint(1, 16)
            hours = rng.randint(10, 70)
            sex = rng.choice(["Female", "Male"])
            high = (education >= 13 and hours >= 40) or (
                work == "Self-emp, not inc" and hours >= 50
            )
            income = ">50K" if high != (rng.random() < 0.05) else "<=50K"
            shown = f'"{work}"' if "," in work else work
            stream.write(f"{age}, {shown}, {education}, {hours}, {sex}, {income}\n")
    raw: list[dict[str, object]] = [
        {"age": 40, "workclass": None, "education_num": 13, "hours_per_week": 45, "sex": "Male"},
        {
            "age": 25,
            "workclass": "Self-emp, not inc",
            "education_num": 9,
            "hours_per_week": 30,
            "sex": "Female",
        },
    ]
    return Made(path, "income", raw)


def sales(folder: Path, rows: int = 400) -> Made:
    """';' between fields and an unnamed index column, as pandas writes for Excel in Europe."""
    rng = random.Random(13)
    path = folder / "sales.csv"
    with path.open("w", newline="", encoding="utf-8") as stream:
        out = csv.writer(stream, delimiter=";", lineterminator="\r\n")
        out.writerow(["", "date", "region", "promo", "units", "price", "tier"])
        for i in range(rows):
            region = rng.choice(["North", "South", "East", "West"])
            promo = rng.choice(["true", "false"])
            units = round(rng.uniform(1, 100), 2)
            price = round(rng.uniform(1, 20), 2)
            value = (
                units
                * price
                * (1.5 if region == "North" else 1.0)
                * (1.3 if promo == "true" else 1)
            )
            tier = "high" if value > 800 else "mid" if value > 250 else "low"
            day = 1 + i % 28
            out.writerow([i, f"2026-0{1 + i % 9}-{day:02d}", region, promo, units, price, tier])
    raw: list[dict[str, object]] = [
        {"region": "North", "promo": True, "units": 80.0, "price": 15.0},
        {"region": "West", "promo": False, "units": 5.0, "price": 2.0},
    ]
    return Made(path, "tier", raw)


def parquet_twin(made: Made, folder: Path) -> Made:
    """The passengers table as Parquet: typed columns, nulls instead of missing tokens."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with made.path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))

    def number(text: str) -> float | None:
        return None if text in ("", "NA") else float(text)

    table = pa.table(
        {
            "passenger_id": pa.array([int(r["passenger_id"]) for r in rows], pa.int64()),
            "name": [r["name"] for r in rows],
            "sex": pa.array([r["sex"] for r in rows]).dictionary_encode(),
            "embarked": [r["embarked"] or None for r in rows],
            "pclass": pa.array([int(r["pclass"]) for r in rows], pa.int32()),
            "age": pa.array([number(r["age"]) for r in rows], pa.float64()),
            "fare": pa.array([float(r["fare"]) for r in rows], pa.float64()),
            "survived": [r["survived"] for r in rows],
        }
    )
    path = folder / "passengers.parquet"
    pq.write_table(table, path)
    return Made(path, made.target, made.raw)


TABLES = {"passengers": passengers, "census": census, "sales": sales}


def finite(value: object) -> bool:
    """True for a number that is not NaN (raw rows hold None for missing)."""
    return isinstance(value, (int, float)) and not math.isnan(float(value))
