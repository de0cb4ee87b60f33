"""Readers of the list formats operators load: OpenSanctions ``targets.simple.csv`` and
the OFAC SDN ``sdn.csv``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pipworks_kyc.screening.matcher import ListEntry

OPENSANCTIONS = "opensanctions"
OFAC_SDN = "ofac_sdn"
_OFAC_EMPTY = "-0-"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def read_opensanctions(path: Path) -> Iterator[ListEntry]:
    """``targets.simple.csv``: a header row; list-valued columns are ';'-separated.

    Topics are not a column of the simple export: a row whose ``sanctions`` column is
    filled is a sanction target, a row from a PEP dataset ("peps" in ``dataset``) a PEP.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = (row.get("name") or "").strip()
            if not name or not row.get("id"):
                continue
            topics: list[str] = []
            if (row.get("sanctions") or "").strip():
                topics.append("sanction")
            if "pep" in (row.get("dataset") or "").lower():
                topics.append("role.pep")
            yield ListEntry(
                source=OPENSANCTIONS,
                entry_id=row["id"].strip(),
                name=name,
                aliases=_split(row.get("aliases") or ""),
                birth_dates=_split(row.get("birth_date") or ""),
                countries=tuple(c.upper() for c in _split(row.get("countries") or "")),
                topics=tuple(topics) or ("sanction",),
                schema=(row.get("schema") or "Person").strip(),
            )


def _ofac(value: str) -> str:
    value = value.strip()
    return "" if value == _OFAC_EMPTY else value


def read_ofac_sdn(path: Path) -> Iterator[ListEntry]:
    """``sdn.csv``: no header; ``ent_num, SDN_Name, SDN_Type, Program, ...``; "-0-" is empty.

    Names of individuals are "LAST, First"; they are indexed as written and in natural
    order. Every SDN entry is a sanction target.
    """
    with path.open(newline="", encoding="latin-1") as handle:
        for row in csv.reader(handle):
            if len(row) < 4 or not row[0].strip().isdigit():
                continue
            ent_num, sdn_name, sdn_type = row[0].strip(), _ofac(row[1]), _ofac(row[2])
            if not sdn_name:
                continue
            aliases: tuple[str, ...] = ()
            if "," in sdn_name:
                last, _, first = sdn_name.partition(",")
                aliases = (f"{first.strip()} {last.strip()}",)
            schema = {"individual": "Person", "vessel": "Vessel", "aircraft": "Airplane"}.get(
                sdn_type.lower(), "Organization"
            )
            yield ListEntry(
                source=OFAC_SDN,
                entry_id=ent_num,
                name=sdn_name,
                aliases=aliases,
                topics=("sanction",),
                schema=schema,
            )
