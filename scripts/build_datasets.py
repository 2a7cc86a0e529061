#!/usr/bin/env python3
"""Build the shipped data under datasets/ (and tests/fixtures/cnipa_sample*.csv) from /work/shared/data.

Usage:
    python scripts/build_datasets.py [--src /work/shared/data] [--check]

Standard library only, deterministic (fixed seed, sorted inputs, gzip mtime 0): running it twice gives
byte-identical files. `--check` rebuilds nothing and only validates the hand-written evaluation set
(datasets/eval/quick/) against datasets/demo/patents.jsonl.

What it writes (see datasets/README.md for sources and licences):
    datasets/demo/patents.jsonl        400 real patents (BDCI 2022), institute-heavy, spread over label_id
    datasets/demo/demands.jsonl        50 real enterprise demands (BDCI 2019) that overlap the demo patents
    datasets/dict/stopwords.txt        function words + patent/demand boilerplate (lists below)
    datasets/dict/patent_userdict.txt  jieba user dictionary: KPPatent-ZH gold keyphrases + short IPC terms
    datasets/ipc/ipc_zh.tsv.gz         IPC 2026.01 Chinese titles, section..subgroup
    tests/fixtures/cnipa_sample.csv    10-row CNIPA-style export (UTF-8), + _gbk.csv (GBK)

datasets/eval/quick/ is hand-written (not generated); this script only validates it.
"""
from __future__ import annotations

import argparse
import collections
import csv
import gzip
import io
import json
import math
import os
import random
import re
import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "datasets"
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_SRC = Path(os.environ.get("PTM_SHARED_DATA", "/work/shared/data"))

SEED = 20240601
N_INSTITUTE = 250  # patents with a university / research-institute assignee
N_OTHER = 150  # patents with any other assignee (enterprises, hospitals, ...)
N_DEMANDS = 50
MIN_ABSTRACT = 60

INSTITUTE_RE = re.compile("大学|学院|研究院|研究所|科学院")
HAN_RUN_RE = re.compile(r"[\u4e00-\u9fff]+")
HAS_HAN_RE = re.compile(r"[\u3400-\u9fff]")


# --------------------------------------------------------------------------------------------- io
def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


# ------------------------------------------------------------------------------------ demo corpus
def _allocate(counts: dict[int, int], total: int) -> dict[int, int]:
    """Split `total` over categories proportionally to sqrt(count) (flattens the long tail), >=1 each."""
    weights = {k: math.sqrt(v) for k, v in counts.items()}
    s = sum(weights.values())
    quota = {k: min(counts[k], max(1, round(total * weights[k] / s))) for k in counts}
    order = sorted(counts, key=lambda k: (-counts[k], k))
    i = 0
    while sum(quota.values()) != total:
        k = order[i % len(order)]
        if sum(quota.values()) < total and quota[k] < counts[k]:
            quota[k] += 1
        elif sum(quota.values()) > total and quota[k] > 1:
            quota[k] -= 1
        i += 1
    return quota


def build_patents(src: Path) -> tuple[list[dict], dict[str, int]]:
    rows = read_jsonl(src / "bdci2022_fewshot_patent" / "patents_pseudo_3139.jsonl")
    rows = [r for r in rows if len(r["abstract"].strip()) >= MIN_ABSTRACT and r["title"].strip()]
    rows.sort(key=lambda r: r["id"])
    rng = random.Random(SEED)
    chosen: list[dict] = []
    institute = [r for r in rows if INSTITUTE_RE.search(r["assignee"])]
    other = [r for r in rows if not INSTITUTE_RE.search(r["assignee"])]
    for pool, total in ((institute, N_INSTITUTE), (other, N_OTHER)):
        by_label: dict[int, list[dict]] = collections.defaultdict(list)
        for r in pool:
            by_label[r["label_id"]].append(r)
        quota = _allocate({k: len(v) for k, v in by_label.items()}, total)
        for label in sorted(by_label):
            chosen.extend(rng.sample(by_label[label], quota[label]))
    chosen.sort(key=lambda r: (r["label_id"], r["id"]))
    return [
        {
            "id": r["id"],
            "title": r["title"].strip(),
            "abstract": r["abstract"].strip(),
            "applicants": [r["assignee"].strip()],
            "source": "bdci2022",
        }
        for r in chosen
    ], {r["id"]: r["label_id"] for r in chosen}


# ----------------------------------------------------------------------------------- demo demands
# Character bigrams of these words are ignored when scoring overlap (boilerplate of both text kinds).
_OVERLAP_BOILERPLATE = (
    "需求内容 预期目标 现有工作基础 本发明 本实用新型 公开了 一种 所述 技术 研究 开发 产业化 公司 企业 项目 提高 "
    "进行 实现 具有 能够 方法 包括 设备 装置 系统 我们 目前 问题 应用 生产 产品 需要 解决 研发 合作 领域 工艺 "
    "可以 通过 以及 采用 主要 关键 发展 国内 工作 基础 目标 内容 预期"
).split()


def _bigrams(text: str, ignore: set[str]) -> set[str]:
    out = set()
    for run in HAN_RUN_RE.findall(text):
        for i in range(len(run) - 1):
            b = run[i : i + 2]
            if b not in ignore:
                out.add(b)
    return out


def build_demands(src: Path, patents: list[dict], labels: dict[str, int]) -> list[dict]:
    """Rank real demands by idf-weighted character-bigram overlap with their 3 nearest demo patents,
    keep the best-overlapping ones, then pick round-robin over the label of the nearest patent (variety)."""
    ignore = {w[i : i + 2] for w in _OVERLAP_BOILERPLATE for i in range(len(w) - 1)}
    demands = read_jsonl(src / "bdci2019_demand_achievement" / "derived_requirements.jsonl")
    pat_bigrams = [_bigrams(p["title"] + p["abstract"], ignore) for p in patents]
    df = collections.Counter(b for s in pat_bigrams for b in s)
    n = len(patents)
    idf = {b: math.log((n + 1) / (c + 0.5)) for b, c in df.items()}
    unseen = math.log(n + 1)

    scored = []
    seen_titles = set()
    for d in sorted(demands, key=lambda d: d["rid"]):
        title, content = d["title"].strip(), d["content"].strip()
        if len(content) < 20 or title in seen_titles:  # the source has a few duplicated demands
            continue
        seen_titles.add(title)
        q = _bigrams(title + "。" + title + "。" + content, ignore)  # title counted twice: it is the gist
        norm = math.sqrt(sum(idf.get(b, unseen) for b in q) + 1)
        sims = sorted(((sum(idf[b] for b in q & s) / norm, i) for i, s in enumerate(pat_bigrams)), reverse=True)
        top = sims[:3]
        scored.append((sum(v for v, _ in top) / len(top), d, labels[patents[top[0][1]]["id"]]))
    scored.sort(key=lambda x: (-x[0], x[1]["rid"]))

    pool = scored[: N_DEMANDS * 3]  # the best-overlapping 150 of ~360
    by_label: dict[int, list] = collections.defaultdict(list)
    for item in pool:
        by_label[item[2]].append(item)
    picked = []
    while len(picked) < N_DEMANDS:
        for label in sorted(by_label, key=lambda k: -by_label[k][0][0] if by_label[k] else 0):
            if by_label[label] and len(picked) < N_DEMANDS:
                picked.append(by_label[label].pop(0))
    picked.sort(key=lambda x: x[1]["rid"])
    return [
        {"id": f"D-{d['rid'][:8]}", "title": d["title"].strip(), "text": d["content"].strip(), "source": "bdci2019"}
        for _, d, _ in picked
    ]


# -------------------------------------------------------------------------------------- stopwords
STOPWORDS_FUNCTION = """
的 地 得 了 着 过 之 和 与 及 或 而 并 且 也 都 就 还 又 再 才 在 于 对 从 向 往 把 被 让 给 将 以 为 由 因 其 该 此
这 那 是 有 无 不 没 没有 很 较 更 最 个 种 些 每 各 某 即 如 若 则 但 故 所 乃 吗 呢 吧 啊
这些 那些 这个 那个 这种 那种 这样 那样 这里 那里 此外 另外 其他 其它 其余 其中 其次 首先 然后 最后 同时
一个 一些 一定 一般 一直 一起 一方面 另一方面 一次 各种 各个 各自 某些 某种 每个 多个 若干 部分
等 等等 如 如果 如何 若是 假如 即使 虽然 尽管 但是 然而 不过 因此 因为 所以 由于 从而 于是 以便 以免 以致
以上 以下 以内 以外 之间 之后 之前 之中 之上 之下 之一 而且 并且 或者 还是 不仅 不但 而是 只是 只有 只要
就是 即可 可 能 会 要 应 需 可以 能够 可能 应该 应当 必须 已 已经 曾经 正在 将要 非常 十分 比较 相对 大约
约 左右 及其 以及 进而 及时 例如 比如 譬如 包括 包含 关于 对于 根据 按照 依据 通过 经过 随着 为了 作为
并且 然后 此时 当时 其后 之所以 有关 相关 对应 相应 分别 相互 彼此 本身 自身 自己 其它的 上述 下述 如下
所示 所述 该种 此种 进一步 具体 具体地 优选 优选地 任意 任一 任何 所有 全部 主要 基本 基本上 通常 一般地
做 到 中 后 本 另 来 去 进行 不能 不会 尤其 还有 一下 得到 出现 存在 现成
""".split()

STOPWORDS_PATENT = """
本发明 本实用新型 本申请 本公开 本外观设计 本发明人 本技术 发明 实用新型 申请 公开 公开了 公开一种 一种
其特征在于 特征在于 在于 涉及 涉及到 提供 提供了 提出 提出了 技术领域 领域 背景技术 现有技术 有益效果
效果 实施例 实施方式 具体实施方式 实施 步骤 设置 设置有 设有 装有 安装有 连接 连接有 相连 固定 固定连接
固定安装 采用 使用 利用 用于 用来 具有 具备 使得 使 以使 从而 实现 达到 所需 上端 下端 一端 另一端 两端
第一 第二 第三 第四 第五 第六 权利要求 附图 图中 如图 解决了 克服了 缺点 不足 特点 优点 有效地 显著
""".split()

STOPWORDS_DEMAND = """
需求 需求内容 需求背景 需求描述 技术需求 需求名称 企业 公司 我公司 本公司 贵公司 我厂 本厂 我们 我方 本单位
有限公司 股份有限公司 有限责任公司 集团 希望 期望 希望能 想 想要 寻求 寻找 征集 拟 计划 目前 现在 当前
现阶段 项目 项目名称 预期目标 预期 现有工作基础 工作基础 现有基础 合作方式 合作 合作模式 技术合作 联系方式
联系人 联系电话 邮箱 万元 投入 资金 研发 研究 研制 攻关 关键技术 技术 技术难题 难题 问题
解决方案 方案 产业化 推广 推广应用 成熟 急需 亟需 亟待 迫切 迫切需要 有没有 能否 是否 需要 所需 具备 拥有
""".split()


def build_stopwords() -> list[str]:
    lines = [
        "# Chinese stop words for BM25 tokenisation of patents and enterprise demands (one word per line).",
        "# Generated by scripts/build_datasets.py — edit the lists there, then re-run.",
        "# Sections: general function words, patent boilerplate, demand boilerplate.",
        "# Deliberately NOT stop words: 方法 装置 系统 设备 结构 材料 制备 应用 工艺 特征 目标 ... (technical content).",
    ]
    seen: set[str] = set()
    for name, words in (("function words", STOPWORDS_FUNCTION), ("patent boilerplate", STOPWORDS_PATENT),
                        ("demand boilerplate", STOPWORDS_DEMAND)):
        lines.append(f"# --- {name}")
        for w in words:
            if w not in seen:
                seen.add(w)
                lines.append(w)
    return lines


# --------------------------------------------------------------------------------- jieba userdict
# Keyphrases that are gold in KPPatent-ZH but are everyday/generic words; they are left to jieba's own
# dictionary (giving them a user frequency would only change jieba's ranking of common words).
USERDICT_EXCLUDE = set("""
领域 若干 生成 展现 频繁 简介 施加 终了 时间 位置 信息 方法 装置 设备 系统 控制 显示 移动 连接 固定 调节 支撑
多个 第一 第二 部分 方式 过程 结构 组件 部件 单元 模块 主体 本体 机构 之间 用户 数据 数值 数量 状态 处理 获取
确定 进行 提高 降低 增加 减少 实现 提供 包括 包含 利用 使用 采用 设置 安装 相对 对应 形成 产生 得到 完成 操作
""".split())

_IPC_SPLIT_RE = re.compile(r"[；;，,、：:（）()\[\]〔〕{}<>《》“”\"'。.·\s]+")
_IPC_BAD_RE = re.compile("的|或|与|和|及|入|例如|用于|其他|一般|专门|特别|适用|包括|除|以外|所述|不包含|优先|附注|类目|小类|大组|小组|同上|只有|利用|特殊|所列|该|这|这些|除外|者$|^用|^以|^在|^对|^由|^使|^将|^为|^从"
                         "|^如|^其|^只|^并|^有|^含|^通过|^具有|^所|^非|^两个|^一个|特征|不|后$|时$|中$|上$|式$")


def build_userdict(src: Path, stop: set[str]) -> list[str]:
    items = json.loads((src / "kppatent_zh" / "data_A.json").read_text(encoding="utf-8"))
    counts: collections.Counter[str] = collections.Counter()
    for it in items:
        for k in re.split(r"[,，]", it["output"]):
            counts[k.strip()] += 1
    terms: dict[str, int] = {}
    for word, c in counts.items():
        # Two-character gold keyphrases are kept only when gold in >= 3 patents: jieba already knows most
        # real two-character words, and the rare ones are often fragments (e.g. 射镜, 酸钠).
        if len(word) >= 2 and HAS_HAN_RE.search(word) and not re.search(r"\s", word) \
                and (len(word) > 2 or c >= 3) and word not in stop and word not in USERDICT_EXCLUDE:
            # jieba's dict.txt: median multi-char freq 3, 90th percentile ~100. 20 per gold occurrence,
            # 40..1000, is "known technical term" without outranking everyday words.
            terms[word] = min(1000, 20 * (1 + c))

    # Short technical terms from IPC titles: pure-Han segments of 3..6 chars between separators that occur
    # as a whole segment in >= 3 titles, minus segments that contain function/scope words.
    ipc_counts: collections.Counter[str] = collections.Counter()
    with (src / "ipc_zh_2026_01" / "derived_ipc_zh_flat.tsv").open(encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        for row in reader:
            title = clean_ipc_title(row["title_zh"])
            for seg in set(_IPC_SPLIT_RE.split(title)):
                if 3 <= len(seg) <= 6 and re.fullmatch(r"[\u4e00-\u9fff]+", seg) and not _IPC_BAD_RE.search(seg):
                    ipc_counts[seg] += 1
    for word, c in ipc_counts.items():
        if c >= 3 and word not in terms and word not in stop and word not in USERDICT_EXCLUDE:
            terms[word] = min(1000, 10 * (1 + c))

    # indexer/text.py folds text with NFKC + lower() before jieba, so the dictionary is folded the same way
    # (X射线 -> x射线); on a collision the higher frequency wins.
    folded: dict[str, int] = {}
    for w, f in terms.items():
        key = unicodedata.normalize("NFKC", w).lower()
        folded[key] = max(f, folded.get(key, 0))
    return [f"{w} {folded[w]} nz" for w in sorted(folded)]


# ------------------------------------------------------------------------------------------- IPC
_CJK = r"[\u2e80-\u2fff\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]"
_SPACE_CJK_CJK = re.compile(rf"(?<={_CJK})[ \u3000]+(?={_CJK})")
_SPACE_CJK_ALNUM = re.compile(rf"(?<={_CJK})[ \u3000]+(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])[ \u3000]+(?={_CJK})")
_SPACE_PUNCT_CJK = re.compile(rf"(?<=[,;:])[ \u3000]+(?={_CJK})")
_SPACE_IN_CODE = re.compile(r"(?<![A-Za-z0-9])([A-H]\d{2}[A-Z]) +(\d{1,4}/\d{2,6})(?![0-9/])")


def clean_ipc_title(title: str) -> str:
    """Remove spaces that PDF extraction put between Chinese characters (and between Chinese and a code
    such as '入 A01D43/12', or after an ASCII comma before Chinese), join 'A01G 18/20' to 'A01G18/20',
    collapse the rest. Spaces between Latin words/numbers and the '· ·' depth dots are kept."""
    t = title.strip()
    t = _SPACE_CJK_CJK.sub("", t)
    t = _SPACE_CJK_ALNUM.sub("", t)
    t = _SPACE_PUNCT_CJK.sub("", t)
    t = _SPACE_IN_CODE.sub(r"\1\2", t)
    return re.sub(r"\s{2,}", " ", t)


def build_ipc(src: Path, dest: Path) -> int:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["code", "level", "title_zh", "parent_code"])
    n = 0
    with (src / "ipc_zh_2026_01" / "derived_ipc_zh_flat.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            w.writerow([row["code"], row["level"], clean_ipc_title(row["title_zh"]), row["parent_code"]])
            n += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    return n


# ---------------------------------------------------------------------------------- CNIPA fixture
def _parse_mysql_values(s: str, i: int) -> tuple[list[str], int]:
    """Parse one `( v, v, ... )` tuple starting at s[i] == '('. NULL -> ''."""
    assert s[i] == "("
    i += 1
    values: list[str] = []
    while True:
        while s[i] in " \t\r\n":
            i += 1
        if s[i] == "'":
            i += 1
            out = []
            while True:
                ch = s[i]
                if ch == "\\":
                    nxt = s[i + 1]
                    out.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0", "Z": "\x1a"}.get(nxt, nxt))
                    i += 2
                elif ch == "'" and s[i + 1] == "'":
                    out.append("'")
                    i += 2
                elif ch == "'":
                    i += 1
                    break
                else:
                    out.append(ch)
                    i += 1
            values.append("".join(out))
        else:
            m = re.compile(r"[^,)\s]+").match(s, i)
            token = m.group(0)
            values.append("" if token.upper() == "NULL" else token)
            i = m.end()
        while s[i] in " \t\r\n":
            i += 1
        if s[i] == ",":
            i += 1
        elif s[i] == ")":
            return values, i + 1
        else:
            raise ValueError(f"unexpected {s[i]!r} at {i}")


def parse_cnipa_sql(path: Path) -> tuple[list[str], list[list[str]]]:
    sql = path.read_text(encoding="utf-8")
    create = re.search(r"CREATE TABLE `[^`]+`\s*\((.*?)\)\s*ENGINE", sql, re.S).group(1)
    columns = re.findall(r"^\s*`([^`]+)`\s", create, re.M)
    rows = []
    for m in re.finditer(r"INSERT INTO `[^`]+` VALUES \(", sql):
        values, _ = _parse_mysql_values(sql, m.end() - 1)
        if len(values) != len(columns):
            raise ValueError(f"row has {len(values)} values, table has {len(columns)} columns")
        rows.append(values)
    return columns, rows


def build_cnipa_fixture(src: Path) -> int:
    columns, rows = parse_cnipa_sql(src / "patentsemantix_cnipa_sample" / "专利总表(案例).sql")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # Excel/export style line endings
    w.writerow(columns)
    w.writerows(rows)
    text = buf.getvalue()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "cnipa_sample.csv").write_bytes(text.encode("utf-8"))
    (FIXTURES / "cnipa_sample_gbk.csv").write_bytes(text.encode("gbk"))  # all chars are in GBK (⊂ GB18030)
    return len(rows)


# ------------------------------------------------------------------------------------- eval check
def check_eval_quick(patents: list[dict]) -> tuple[int, int, int]:
    qdir = OUT / "eval" / "quick"
    ids = {p["id"] for p in patents}
    demands = read_jsonl(qdir / "demands.jsonl")
    dids = [d["id"] for d in demands]
    if len(set(dids)) != len(dids):
        raise SystemExit("eval/quick: duplicate demand ids")
    for d in demands:
        if not re.fullmatch(r"Q\d{3}", d["id"]) or not d.get("text", "").strip():
            raise SystemExit(f"eval/quick: bad demand {d['id']!r}")
    with (qdir / "qrels.tsv").open(encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        if header != ["demand_id", "patent_id", "grade"]:
            raise SystemExit(f"eval/quick/qrels.tsv: header {header}")
        qrels = [tuple(r) for r in reader if r]
    seen = set()
    grade2 = collections.Counter()
    for did, pid, grade in qrels:
        if did not in dids or pid not in ids or grade not in {"0", "1", "2"} or (did, pid) in seen:
            raise SystemExit(f"eval/quick/qrels.tsv: bad row {did} {pid} {grade}")
        seen.add((did, pid))
        if grade == "2":
            grade2[did] += 1
    unserved = [d for d in dids if not any(q[0] == d and q[2] in "12" for q in qrels)]
    if any(c != 1 for c in grade2.values()):
        raise SystemExit("eval/quick: each served demand needs exactly one grade-2 patent")
    return len(demands), len(qrels), len(unserved)


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="shared data folder (default %(default)s)")
    ap.add_argument("--check", action="store_true", help="only validate datasets/eval/quick against the demo patents")
    args = ap.parse_args(argv)

    if args.check:
        patents = read_jsonl(OUT / "demo" / "patents.jsonl")
        print("eval/quick: %d demands, %d qrels rows, %d unserved demands — OK" % check_eval_quick(patents))
        return 0

    src: Path = args.src
    if not (src / "README.md").exists():
        print(f"source folder {src} not found (use --src or PTM_SHARED_DATA)", file=sys.stderr)
        return 2

    patents, labels = build_patents(src)
    write_jsonl(OUT / "demo" / "patents.jsonl", patents)
    n_inst = sum(bool(INSTITUTE_RE.search(p["applicants"][0])) for p in patents)
    print(f"demo/patents.jsonl: {len(patents)} patents, {n_inst} university/institute, "
          f"{len(set(labels.values()))} label_id categories")

    demands = build_demands(src, patents, labels)
    write_jsonl(OUT / "demo" / "demands.jsonl", demands)
    print(f"demo/demands.jsonl: {len(demands)} demands")

    stop_lines = build_stopwords()
    write_lines(OUT / "dict" / "stopwords.txt", stop_lines)
    stop = {line for line in stop_lines if not line.startswith("#")}
    print(f"dict/stopwords.txt: {len(stop)} words")

    ud = build_userdict(src, stop)
    write_lines(OUT / "dict" / "patent_userdict.txt", ud)
    print(f"dict/patent_userdict.txt: {len(ud)} terms")

    n_ipc = build_ipc(src, OUT / "ipc" / "ipc_zh.tsv.gz")
    print(f"ipc/ipc_zh.tsv.gz: {n_ipc} codes")

    n_cnipa = build_cnipa_fixture(src)
    print(f"tests/fixtures/cnipa_sample.csv (+ _gbk.csv): {n_cnipa} rows")

    if (OUT / "eval" / "quick" / "qrels.tsv").exists():
        print("eval/quick: %d demands, %d qrels rows, %d unserved demands — OK" % check_eval_quick(patents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
