"""Print the mutation score of the last `mutmut run` (for `make mutate`).

Reads mutants/mutmut-cicd-stats.json (`mutmut export-cicd-stats`): the score is the share of
mutants the tests killed, of those that were checked (mutants no test reaches count as
survivors: a change nothing notices).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    stats = json.loads(
        Path(sys.argv[1] if len(sys.argv) > 1 else "mutants/mutmut-cicd-stats.json").read_text()
    )
    killed = stats["killed"] + stats.get("timeout", 0) + stats.get("caught_by_type_check", 0)
    # Mutants with a verdict (a run narrowed with MUTANTS=... leaves the others unchecked).
    checked = killed + sum(
        stats.get(key, 0) for key in ("survived", "no_tests", "suspicious", "segfault")
    )
    if checked == 0:
        print("no mutant was checked: see mutmut's output above", file=sys.stderr)
        return 1
    print(
        f"mutants: {stats['total']}, killed: {killed}, survived: {stats['survived']}, "
        f"no test: {stats.get('no_tests', 0)}, suspicious: {stats.get('suspicious', 0)}"
    )
    print(
        f"mutation score: {100 * killed / checked:.1f}% ({killed} killed of {checked} checked, "
        f"{stats['total']} mutants in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
