"""Label Studio interop: write review tasks + a labeling config, and read Label Studio annotation exports.

Tasks (``tasks.json``) follow Label Studio's import format: ``[{"id": 1, "data": {"image": ..., "key": ...}}]``.
Exports are read in both of Label Studio's JSON flavours:

* JSON: ``[{"id", "data": {"key", ...}, "annotations": [{"result": [{"from_name": "decision", "type": "choices",
  "value": {"choices": ["reject"]}}, {"from_name": "note", "type": "textarea", "value": {"text": ["..."]}}],
  "was_cancelled": false}]}]``
* JSON-MIN: ``[{"key": ..., "decision": "reject", "note": "..."}]`` (one flat row per annotated task).
"""

from __future__ import annotations

from typing import Any

from surd.review.records import Decision, make_decision

LABEL_CONFIG = """<View>
  <Header value="Does the image match its simple prompt?"/>
  <Image name="image" value="$image" maxWidth="512px"/>
  <Header value="Simple prompt"/>
  <Text name="simple_prompt" value="$simple_prompt"/>
  <Header value="Complex prompt"/>
  <Text name="complex_prompt" value="$complex_prompt"/>
  <Choices name="decision" toName="image" choice="single" showInline="true" required="true">
    <Choice value="accept" hotkey="a"/>
    <Choice value="reject" hotkey="r"/>
  </Choices>
  <TextArea name="note" toName="image" placeholder="optional note" maxSubmissions="1" editable="true"/>
</View>
"""


def make_tasks(rows: list[dict[str, Any]], image_url_prefix: str = "") -> list[dict[str, Any]]:
    """Label Studio tasks for export rows (dicts with key, image, simple_prompt, complex_prompt, scores)."""
    tasks = []
    for i, row in enumerate(rows, start=1):
        data = {
            "image": image_url_prefix + row["image"],
            "key": row["key"],
            "simple_prompt": row["simple_prompt"],
            "complex_prompt": row["complex_prompt"],
        }
        for score in ("simple_score", "complex_score"):
            if row.get(score) is not None:
                data[score] = row[score]
        tasks.append({"id": i, "data": data})
    return tasks


def _annotation_decision(ann: dict[str, Any], where: str, problems: list[str]) -> Decision | None:
    """The decision in one annotation, or None when it has no decision choice."""
    choice, note = None, ""
    for region in ann.get("result") or []:
        if not isinstance(region, dict):
            continue
        value = region.get("value") or {}
        if region.get("from_name") == "decision" and region.get("type") == "choices":
            picked = value.get("choices") or []
            if len(picked) != 1:
                problems.append(f"{where}: expected exactly one decision choice, got {picked!r}")
                return None
            choice = picked[0]
        elif region.get("from_name") == "note" and region.get("type") == "textarea":
            text = value.get("text") or []
            note = "\n".join(text) if isinstance(text, list) else str(text)
    if choice is None:
        return None
    return make_decision(choice, note, where, problems)


def _task_key(task: dict[str, Any]) -> str | None:
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    key = data.get("key", task.get("key"))
    return key if isinstance(key, str) and key else None


def _parse_task(task: Any, where: str, problems: list[str]) -> tuple[str | None, Decision | None]:
    if not isinstance(task, dict):
        problems.append(f"{where}: expected a task object, got {type(task).__name__}")
        return None, None
    key = _task_key(task)
    if key is None:
        problems.append(f"{where}: task has no data.key; export the tasks with `surd review export --format labelstudio`")
        return None, None
    where = f"{where} (key {key!r})"
    if "annotations" not in task:  # JSON-MIN: the control values are top-level fields
        if task.get("decision") in (None, ""):
            return key, None
        note = task.get("note", "")
        return key, make_decision(task.get("decision"), note if isinstance(note, str) else str(note), where, problems)
    found: list[Decision] = []
    for ann in task.get("annotations") or []:
        if isinstance(ann, dict) and not ann.get("was_cancelled"):
            d = _annotation_decision(ann, where, problems)
            if d is not None:
                found.append(d)
    if len({d.decision for d in found}) > 1:
        problems.append(f"{where}: annotators disagree ({', '.join(d.decision for d in found)}); resolve it in Label Studio")
        return key, None
    if not found:
        return key, None
    return key, Decision(found[0].decision, "; ".join(dict.fromkeys(d.note for d in found if d.note)))


def parse_export(obj: list[Any], source: str, problems: list[str]) -> dict[str, Decision]:
    """Decisions from a Label Studio JSON or JSON-MIN export; tasks without an annotation are undecided."""
    out: dict[str, Decision] = {}
    for i, task in enumerate(obj):
        key, d = _parse_task(task, f"{source}: task #{i}", problems)
        if key is None or d is None:
            continue
        if key in out and out[key].decision != d.decision:
            problems.append(f"{source}: key {key!r} appears in several tasks with different decisions")
        out[key] = d
    return out
