"""One matchmaking session (对接会) as an integer program: which patents to present, which enterprises to invite.

Model (OR-Tools CP-SAT), given the strong (patent, enterprise) pairs and their scores:

    x_p ∈ {0,1}  patent p is presented          y_e ∈ {0,1}  enterprise e is invited
    z_pe = x_p ∧ y_e  for each strong pair      (a realised pair: both are in the room)
    maximise   Σ score_pe · z_pe
    subject to Σ x_p ≤ slots,  Σ y_e ≤ seats
               Σ_{p of university u} x_p ≤ max_per_university   (owners "" are not capped)
               Σ_{p of field f} x_p ≤ max_per_field             (fields "" are not capped)
               x_p ≤ Σ_e z_pe,  y_e ≤ Σ_p z_pe                  (nobody comes without a strong match)
               x_p = 1 / y_e = 1 for included, 0 for excluded ones

`check_plan` tests any plan — the solver's or one staff edited by hand — against the same constraints and lists
each violation in words; `assemble_plan` builds a plan from a chosen set of patents and enterprises.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["optimal", "feasible", "empty"]
STATUSES: tuple[Status, ...] = ("optimal", "feasible", "empty")

# CP-SAT only takes integer coefficients: scores (cosines, 4 significant decimals matter) are multiplied by
# SCALE and rounded, so the optimum found is within (number of pairs) × 0.5/SCALE of the true optimum.
SCALE = 10_000


@dataclass(frozen=True)
class Limits:
    slots: int  # pitch slots = most patents presented
    seats: int  # enterprise seats = most enterprises invited
    max_per_university: int | None = None  # most patents from one owner (first applicant)
    max_per_field: int | None = None  # most patents from one field = IPC subclass of the first IPC ("H04N")

    def validate(self) -> None:
        """Raise ValueError naming the bad capacity."""
        for name in ("slots", "seats"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        for name in ("max_per_university", "max_per_field"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 or left unset (no cap), not {value!r}")


@dataclass(frozen=True)
class PatentInfo:
    id: str
    title: str
    university: str  # first applicant, "" if unknown
    field: str  # IPC subclass, "" if unknown


@dataclass(frozen=True)
class Pair:
    patent_id: str
    enterprise: str
    demand_id: str
    score: float  # dense cosine of the best demand of this enterprise to the patent
    rank: int  # 1-based rank of the patent in that demand's match list (engine order)


@dataclass
class SessionPlan:
    theme: str  # human label, e.g. "锂电池 · H01M"
    patents: list[str]  # presented patent ids in slot order
    enterprises: list[str]  # invited enterprises
    pairs: list[Pair]  # realised pairs (patent presented AND enterprise invited), score descending
    objective: float  # sum of realised pair scores
    status: Status
    unfilled_slots: int
    unfilled_seats: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SessionPlan:
        status = d.get("status")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        return cls(
            theme=str(d.get("theme", "")),
            patents=[str(p) for p in d.get("patents", [])],
            enterprises=[str(e) for e in d.get("enterprises", [])],
            pairs=[Pair(str(p["patent_id"]), str(p["enterprise"]), str(p["demand_id"]), float(p["score"]), int(p["rank"]))
                   for p in d.get("pairs", [])],
            objective=float(d.get("objective", 0.0)),
            status=status,
            unfilled_slots=int(d.get("unfilled_slots", 0)),
            unfilled_seats=int(d.get("unfilled_seats", 0)),
        )


@dataclass
class _Problem:
    """Validated input: the patents that can be presented, the pairs between the allowed ones, forced choices."""

    info: dict[str, PatentInfo]
    pairs: list[Pair]
    include_patents: set[str] = field(default_factory=set)
    include_enterprises: set[str] = field(default_factory=set)


def scaled(score: float) -> int:
    return int(round(score * SCALE))


def validate_inputs(patents: Sequence[PatentInfo], pairs: Sequence[Pair], limits: Limits) -> dict[str, PatentInfo]:
    """The patents by id, after checking the input; raises ValueError saying what to fix."""
    limits.validate()
    info: dict[str, PatentInfo] = {}
    for p in patents:
        if p.id in info:
            raise ValueError(f"patent {p.id!r} is listed twice; give each patent once")
        info[p.id] = p
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        if pair.patent_id not in info:
            raise ValueError(f"pair ({pair.patent_id!r}, {pair.enterprise!r}) names a patent that is not in the "
                             "patent list; add the patent or drop the pair")
        if not pair.enterprise:
            raise ValueError(f"pair for patent {pair.patent_id!r} has no enterprise; use the demand id when the name is unknown")
        if not math.isfinite(pair.score):
            raise ValueError(f"pair ({pair.patent_id!r}, {pair.enterprise!r}) has score {pair.score!r}; scores must be finite numbers")
        key = (pair.patent_id, pair.enterprise)
        if key in seen:
            raise ValueError(f"pair ({pair.patent_id!r}, {pair.enterprise!r}) is given twice; keep only the best demand per enterprise")
        seen.add(key)
    return info


def _problem(info: dict[str, PatentInfo], pairs: Sequence[Pair], limits: Limits, include_patents: Collection[str],
             exclude_patents: Collection[str], include_enterprises: Collection[str],
             exclude_enterprises: Collection[str]) -> _Problem:
    """Drops excluded patents and enterprises, then checks the includes can hold together (or says why not)."""
    inc_p, exc_p, inc_e, exc_e = set(include_patents), set(exclude_patents), set(include_enterprises), set(exclude_enterprises)
    for what, both in (("patents", inc_p & exc_p), ("enterprises", inc_e & exc_e)):
        if both:
            raise ValueError(f"{what} {', '.join(sorted(both))} are both included and excluded; choose one")
    unknown = inc_p - set(info)
    if unknown:
        raise ValueError(f"included patents {', '.join(sorted(unknown))} are not among the candidates; check the ids")
    kept = [p for p in pairs if p.patent_id not in exc_p and p.enterprise not in exc_e]
    problem = _Problem(info, kept, inc_p, inc_e)
    _check_includes(problem, limits)
    return problem


def _check_includes(problem: _Problem, limits: Limits) -> None:
    """The conflicts a person can fix, found before solving so the message can name them."""
    lonely_p = sorted(problem.include_patents - {q.patent_id for q in problem.pairs})
    if lonely_p:
        raise ValueError(f"included patents {', '.join(lonely_p)} have no strong match with any enterprise still allowed; "
                         "drop them from the includes or stop excluding their enterprises")
    lonely_e = sorted(problem.include_enterprises - {q.enterprise for q in problem.pairs})
    if lonely_e:
        raise ValueError(f"included enterprises {', '.join(lonely_e)} have no strong match with any patent still allowed; "
                         "drop them from the includes or stop excluding their patents")
    if len(problem.include_patents) > limits.slots:
        raise ValueError(f"{len(problem.include_patents)} patents are included but there are only slots={limits.slots}")
    if len(problem.include_enterprises) > limits.seats:
        raise ValueError(f"{len(problem.include_enterprises)} enterprises are included but there are only seats={limits.seats}")
    forced = [problem.info[p] for p in problem.include_patents]
    for attr, cap_name in (("university", "max_per_university"), ("field", "max_per_field")):
        cap = getattr(limits, cap_name)
        counts = Counter(getattr(p, attr) for p in forced if getattr(p, attr))
        for group, n in sorted(counts.items()):
            if cap is not None and n > cap:
                raise ValueError(f"{n} patents forced from {group} but {cap_name}={cap}; include fewer of them or raise the cap")


def solve_session(patents: Sequence[PatentInfo], pairs: Sequence[Pair], limits: Limits, *,
                  include_patents: Collection[str] = (), exclude_patents: Collection[str] = (),
                  include_enterprises: Collection[str] = (), exclude_enterprises: Collection[str] = (),
                  time_limit_s: float = 10.0) -> SessionPlan:
    """The best session under `limits` (see the module docstring); includes/excludes are staff edits."""
    from ortools.sat.python import cp_model

    info = validate_inputs(patents, pairs, limits)
    problem = _problem(info, pairs, limits, include_patents, exclude_patents, include_enterprises, exclude_enterprises)
    if not problem.pairs:
        return assemble_plan([], [], problem.pairs, limits, status="empty")

    model = cp_model.CpModel()
    x = {p: model.NewBoolVar(f"x[{p}]") for p in sorted({q.patent_id for q in problem.pairs})}
    y = {e: model.NewBoolVar(f"y[{e}]") for e in sorted({q.enterprise for q in problem.pairs})}
    z = {}
    for q in problem.pairs:
        z[q] = conjunction(model, x[q.patent_id], y[q.enterprise], f"z[{q.patent_id},{q.enterprise}]")
    add_capacity(model, x, info, limits)
    model.Add(sum(y.values()) <= limits.seats)
    add_strong_match_rules(model, x, y, z)
    # Includes are solver assumptions, so an infeasible combination comes back as the includes to blame.
    forced = {x[p].Index(): f"patent {p}" for p in sorted(problem.include_patents)}
    forced |= {y[e].Index(): f"enterprise {e}" for e in sorted(problem.include_enterprises)}
    model.AddAssumptions([x[p] for p in sorted(problem.include_patents)] + [y[e] for e in sorted(problem.include_enterprises)])
    model.Maximize(sum(scaled(q.score) * zv for q, zv in z.items()))

    status = run_solver(model, time_limit_s, forced)
    chosen_p = [p for p, v in x.items() if status.value(v)]
    chosen_e = [e for e, v in y.items() if status.value(v)]
    return assemble_plan(chosen_p, chosen_e, problem.pairs, limits, status=status.label if chosen_p else "empty")


def conjunction(model, a, b, name: str):
    """A new boolean equal to a AND b, as three linear constraints (propagates better than a product)."""
    both = model.NewBoolVar(name)
    model.Add(both <= a)
    model.Add(both <= b)
    model.Add(both >= a + b - 1)
    return both


def add_capacity(model, x: dict[str, object], info: dict[str, PatentInfo], limits: Limits) -> None:
    """Slots and the per-university / per-field caps over the presented patents `x` (one session)."""
    model.Add(sum(x.values()) <= limits.slots)
    for attr, cap in (("university", limits.max_per_university), ("field", limits.max_per_field)):
        if cap is None:
            continue
        groups: dict[str, list[object]] = defaultdict(list)
        for p, var in x.items():
            group = getattr(info[p], attr)
            if group:  # unknown owners / fields are not one group
                groups[group].append(var)
        for members in groups.values():
            if len(members) > cap:
                model.Add(sum(members) <= cap)


def add_strong_match_rules(model, x: dict[str, object], y: dict[str, object], z: dict[Pair, object]) -> None:
    """Every presented patent and every invited enterprise has at least one realised pair (one session)."""
    of_patent: dict[str, list[object]] = defaultdict(list)
    of_enterprise: dict[str, list[object]] = defaultdict(list)
    for q, zv in z.items():
        of_patent[q.patent_id].append(zv)
        of_enterprise[q.enterprise].append(zv)
    for p, var in x.items():
        model.Add(var <= sum(of_patent[p]))
    for e, var in y.items():
        model.Add(var <= sum(of_enterprise[e]))


@dataclass
class SolverResult:
    solver: object
    label: Status

    def value(self, var: object) -> bool:
        return bool(self.solver.Value(var))  # type: ignore[attr-defined]


def run_solver(model, time_limit_s: float, forced: dict[int, str] | None = None) -> SolverResult:
    """Solve deterministically (one worker, fixed seed); "feasible" when the time limit stopped the search."""
    from ortools.sat.python import cp_model

    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0, not {time_limit_s!r}")
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = 1  # the same input gives the same plan on every run and machine
    solver.parameters.random_seed = 0
    code = solver.Solve(model)
    if code == cp_model.OPTIMAL:
        return SolverResult(solver, "optimal")
    if code == cp_model.FEASIBLE:
        return SolverResult(solver, "feasible")
    if code == cp_model.INFEASIBLE:
        core = [(forced or {}).get(i, "?") for i in solver.SufficientAssumptionsForInfeasibility()]
        raise ValueError(f"the includes {', '.join(core) or '(none)'} cannot all be in one session under these limits "
                         "(each needs a strong match with another chosen one, within slots, seats and caps); "
                         "include fewer or raise the limits")
    raise ValueError(f"no plan found within time_limit_s={time_limit_s:g}; allow more time or narrow the theme")


def assemble_plan(patent_ids: Iterable[str], enterprises: Iterable[str], pairs: Sequence[Pair], limits: Limits, *,
                  theme: str = "", status: Status = "feasible") -> SessionPlan:
    """A plan from a chosen set of patents and enterprises: realised pairs, slot order, objective, free places.
    Slot order: realised score sum descending, then id (so the strongest patents open the session)."""
    chosen_p, chosen_e = list(dict.fromkeys(patent_ids)), list(dict.fromkeys(enterprises))
    in_p, in_e = set(chosen_p), set(chosen_e)
    realised = sorted((q for q in pairs if q.patent_id in in_p and q.enterprise in in_e),
                      key=lambda q: (-q.score, q.patent_id, q.enterprise))
    by_patent: Counter[str] = Counter()
    by_enterprise: Counter[str] = Counter()
    for q in realised:
        by_patent[q.patent_id] += q.score
        by_enterprise[q.enterprise] += q.score
    return SessionPlan(
        theme=theme,
        patents=sorted(chosen_p, key=lambda p: (-by_patent[p], p)),
        enterprises=sorted(chosen_e, key=lambda e: (-by_enterprise[e], e)),
        pairs=realised,
        objective=math.fsum(q.score for q in realised),
        status=status,
        unfilled_slots=max(0, limits.slots - len(chosen_p)),
        unfilled_seats=max(0, limits.seats - len(chosen_e)),
    )


def check_plan(plan: SessionPlan, patents: Sequence[PatentInfo], pairs: Sequence[Pair], limits: Limits) -> list[str]:
    """Every violated constraint in plain Chinese (empty list = valid), for plans staff edited by hand."""
    info = {p.id: p for p in patents}
    strong = {(q.patent_id, q.enterprise): q for q in pairs}
    out: list[str] = []
    for what, items in (("专利", plan.patents), ("企业", plan.enterprises)):
        for item, n in sorted(Counter(items).items()):
            if n > 1:
                out.append(f"{what} {item} 在本场出现了 {n} 次（每个只能出现一次）")
    out += [f"专利 {p} 不在候选专利中" for p in dict.fromkeys(plan.patents) if p not in info]
    presented, invited = set(plan.patents), set(plan.enterprises)
    if len(presented) > limits.slots:
        out.append(f"路演专利 {len(presented)} 项，超过路演席位 {limits.slots} 个")
    if len(invited) > limits.seats:
        out.append(f"邀请企业 {len(invited)} 家，超过企业席位 {limits.seats} 个")
    for attr, cap, label in (("university", limits.max_per_university, "单位"), ("field", limits.max_per_field, "领域")):
        counts = Counter(getattr(info[p], attr) for p in presented if p in info and getattr(info[p], attr))
        out += [f"{label} {group} 有 {n} 项专利路演，超过上限 {cap} 项" for group, n in sorted(counts.items())
                if cap is not None and n > cap]
    realised = {k for k in strong if k[0] in presented and k[1] in invited}
    out += [f"专利 {p} 与本场邀请的企业都没有强匹配" for p in dict.fromkeys(plan.patents)
            if p in info and not any(k[0] == p for k in realised)]
    out += [f"企业 {e} 与本场路演的专利都没有强匹配" for e in dict.fromkeys(plan.enterprises)
            if not any(k[1] == e for k in realised)]
    listed = {(q.patent_id, q.enterprise) for q in plan.pairs}
    out += [f"对接 ({p}, {e}) 不是本场实现的强匹配" for p, e in sorted(listed - realised)]
    out += [f"对接 ({p}, {e}) 是本场实现的强匹配，但未列出" for p, e in sorted(realised - listed)]
    total = math.fsum(strong[k].score for k in realised)
    if abs(plan.objective - total) > 1e-6:
        out.append(f"目标值 {plan.objective:.4f} 与本场强匹配得分之和 {total:.4f} 不符")
    return out
