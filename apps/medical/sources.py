"""Several medical datasets in one model: a ``sources`` YAML that names other dataset YAMLs, each with its
own files, labels and split, and says how each source's image labels feed the model's image-level heads.

Samples carry only the labels their source has; the rest are ``None`` and the Trainer's partial-label
masks (``present``) leave them out of those heads' losses. So a PH2 image trains the lesion mask, the
3-class diagnosis and melanoma-vs-not, and an ISIC 2017 image (no mask here) trains melanoma-vs-not only.

A sources YAML (paths relative to it)::

    format: sources
    classes: [background, lesion]                 # the mask classes every source shares
    labels:                                       # image-level heads -> their classes
      diagnosis: [common_nevus, atypical_nevus, melanoma]
      melanoma: [not_melanoma, melanoma]
    input: {mode: resize, size: [192, 256]}       # overrides each source's
    keep_largest: true
    fov_diameter: null                            # fundus: a common field-of-view width for every source
    sources:
      ph2:
        data: medical-ph2.yaml                    # its images, masks, labels and split as they are
        repeat: 4                                 # oversample in training (4 x 120 beside ISIC's 2,000)
        labels:                                   # head -> {source class: head class}, or "same"
          diagnosis: same
          melanoma: {common_nevus: not_melanoma, atypical_nevus: not_melanoma, melanoma: melanoma}
      isic2017:
        data: medical-isic2017.yaml
        labels: {melanoma: same}

>>> spec = load_sources_spec("datasets/medical-derm.yaml")                 # doctest: +SKIP
>>> ds = MultiSourceDataset(spec, "train", augment=True)                    # doctest: +SKIP
>>> {k: v is None for k, v in ds[len(ds) - 1]["targets"].items()}          # an ISIC image  # doctest: +SKIP
{'mask': True, 'diagnosis': True, 'melanoma': False}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset

from polyhead.apps.medical.data import MedicalDataset, MedicalSpec, input_contrast, load_spec
from polyhead.dataset_yaml import check_keys, get_bool, get_mapping, get_names, get_number, read_yaml
from polyhead.errors import InputError
from polyhead.preprocess import IMAGENET_MEAN, IMAGENET_STD, Norm

YAML_KEYS = ("format", "classes", "labels", "input", "keep_largest", "fov_diameter", "sources", "score")
SOURCE_KEYS = ("data", "repeat", "labels")


@dataclass
class Source:
    """One dataset of a sources YAML and how its labels map onto the model's heads."""

    name: str
    spec: MedicalSpec
    repeat: int = 1
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # head -> {source class: head class}


@dataclass
class SourcesSpec:
    """A parsed sources YAML; ``classes`` / ``input_*`` / ``keep_largest`` mirror :class:`MedicalSpec`."""

    path: Path
    classes: list[str]
    heads: dict[str, list[str]]
    input_mode: str
    input_size: tuple[int, int]
    keep_largest: bool
    fov_diameter: float | None
    input_contrast: str | None
    sources: list[Source]
    score: list[str] = field(default_factory=list)  # metrics averaged into the checkpoint score

    @property
    def diagnosis(self) -> list[str]:
        """The ``diagnosis`` head's classes (the card's ``diagnosis_classes``), [] without one."""
        return self.heads.get("diagnosis", [])

    @property
    def root(self) -> Path:
        return self.path.parent

    layout = "sources"

    @property
    def split(self) -> dict:
        return {s.name: s.spec.split for s in self.sources}


def is_sources_yaml(path: str | Path) -> bool:
    """True for a ``format: sources`` YAML (read without checking anything else)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(raw, dict) and raw.get("format") == "sources"


def load_sources_spec(path: str | Path) -> SourcesSpec:
    """Parse and check a sources YAML (see the module docstring); every problem names the file."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(path, "a sources YAML is a mapping")
    check_keys(raw, YAML_KEYS, path)
    classes = get_names(raw, "classes", path, ["background", "foreground"])
    heads_raw = get_mapping(raw, "labels", path)
    heads = {str(h): get_names(heads_raw, h, path) for h in heads_raw}
    if "mask" in heads:
        raise InputError(path, "'mask' is the segmentation head; name image-level heads otherwise")
    inp = get_mapping(raw, "input", path, known=("mode", "size", "contrast"))
    srcs = get_mapping(raw, "sources", path)
    if not srcs:
        raise InputError(path, "'sources' must name at least one dataset YAML")
    fov = raw.get("fov_diameter")
    fov_d = None if fov is None else get_number(raw, "fov_diameter", path, 0.0, float, 32.0, 20000.0)
    sources = []
    for name, entry in srcs.items():
        if not isinstance(entry, dict) or "data" not in entry:
            raise InputError(path, f"source '{name}' needs 'data: <dataset yaml>'")
        check_keys(entry, SOURCE_KEYS, path, where=f"sources.{name}.")
        data = Path(str(entry["data"]))
        spec = load_spec(data if data.is_absolute() else path.parent / data)
        if spec.classes != classes:
            raise InputError(path, f"source '{name}' has mask classes {spec.classes}, this YAML {classes}")
        if inp:
            spec.input_mode = str(inp.get("mode", spec.input_mode))
            spec.input_size = tuple(inp.get("size", spec.input_size))  # type: ignore[assignment]
            if "contrast" in inp:
                spec.input_contrast = input_contrast(inp, path)
        if fov_d is not None:
            spec.fov_diameter = fov_d
        sources.append(
            Source(
                str(name),
                spec,
                get_number(entry, "repeat", path, 1, int, 1, 1000),
                _label_maps(entry.get("labels") or {}, spec, heads, path, str(name)),
            )
        )
    first = sources[0].spec
    contrasts = {s.name: s.spec.input_contrast for s in sources}
    if len(set(contrasts.values())) > 1:  # one model, one input pipeline
        raise InputError(path, f"sources differ in input.contrast {contrasts}; set input.contrast here for all")
    score = get_names(raw, "score", path, [])
    return SourcesSpec(
        path=path,
        classes=classes,
        heads=heads,
        input_mode=first.input_mode,
        input_size=first.input_size,
        keep_largest=get_bool(raw, "keep_largest", path, first.keep_largest),
        fov_diameter=fov_d,
        input_contrast=first.input_contrast,
        sources=sources,
        score=score,
    )


def _label_maps(raw, spec: MedicalSpec, heads: dict[str, list[str]], path: Path, name: str) -> dict:
    if not isinstance(raw, dict):
        raise InputError(path, f"sources.{name}.labels must map heads to class maps or 'same'")
    maps: dict[str, dict[str, str]] = {}
    for head, m in raw.items():
        if head not in heads:
            raise InputError(path, f"sources.{name}.labels: unknown head '{head}'; heads: {', '.join(heads)}")
        if m == "same":
            m = {c: c for c in spec.diagnosis}
        if not isinstance(m, dict):
            raise InputError(path, f"sources.{name}.labels.{head} must be a mapping or 'same'")
        m = {str(k): str(v) for k, v in m.items()}
        missing = set(spec.diagnosis) - set(m)
        bad = {v for v in m.values()} - set(heads[head])
        if missing:
            raise InputError(path, f"sources.{name}.labels.{head}: no mapping for source classes {sorted(missing)}")
        if bad:
            raise InputError(path, f"sources.{name}.labels.{head}: {sorted(bad)} are not classes of '{head}'")
        maps[str(head)] = m
    return maps


class MultiSourceDataset(Dataset):
    """The sources' :class:`MedicalDataset` splits one after another (training repeats each ``repeat``
    times). Samples: ``{"image", "targets": {"mask": ... | None, <head>: () long | None, ...}, "name"}``."""

    def __init__(
        self,
        spec: SourcesSpec,
        split: str,
        augment: bool = False,
        patches_per_image: int = 1,
        norm: Norm = (IMAGENET_MEAN, IMAGENET_STD),
    ):
        self.spec = spec
        #: one dataset per source (the name the Trainer's augmentation seeding looks for)
        self.datasets = [MedicalDataset(s.spec, split, augment, patches_per_image, norm) for s in spec.sources]
        self.repeats = [s.repeat if augment else 1 for s in spec.sources]
        self.offsets = np.cumsum([0] + [len(d) * r for d, r in zip(self.datasets, self.repeats, strict=True)])
        self.items = [it for d in self.datasets for it in d.items]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def bad(self) -> dict[str, str]:
        return {k: v for d in self.datasets for k, v in d.bad.items()}

    def head_labels(self, source: int, label: int | None) -> dict[str, int]:
        """One source label (a class id of the source's own list) -> ``{head: class id}`` for every mapped head."""
        if label is None:
            return {}
        src = self.spec.sources[source]
        name = src.spec.diagnosis[label]
        return {h: self.spec.heads[h].index(m[name]) for h, m in src.labels.items()}

    def __getitem__(self, index: int) -> dict | None:
        s = int(np.searchsorted(self.offsets, index, side="right") - 1)
        ds = self.datasets[s]
        sample = ds[(index - int(self.offsets[s])) % len(ds)]
        if sample is None:
            return None
        own = sample["targets"].pop("diagnosis", None)
        mapped = self.head_labels(s, None if own is None else int(own))
        sample["targets"].update({h: torch.tensor(mapped[h]) if h in mapped else None for h in self.spec.heads})
        sample["name"] = f"{self.spec.sources[s].name}/{sample['name']}"
        return sample


def evaluate_sources(
    model, dataset: MultiSourceDataset, tta: bool = False, hd95: bool = True, detail: bool = False, **kwargs
) -> dict:
    """Each source's split evaluated on its own (metrics prefixed ``<source>/``); ``score`` is the mean of
    the YAML's ``score`` metrics, or of the sources' scores. ``kwargs`` go to :func:`evaluate`
    (``temperature``, ``collect``, ``keep_largest``)."""
    from polyhead.apps.medical.evaluate import evaluate

    spec = dataset.spec
    out: dict = {}
    collect = kwargs.pop("collect", None)
    keep = kwargs.pop("keep_largest", spec.keep_largest)
    for s, (src, ds) in enumerate(zip(spec.sources, dataset.datasets, strict=True)):
        heads = {h: spec.heads[h] for h in src.labels}
        part = evaluate(
            model,
            ds,
            src.spec,
            tta=tta,
            hd95=hd95,
            detail=detail,
            keep_largest=keep,
            heads=heads,
            label_map=lambda label, s=s: dataset.head_labels(s, label),
            collect=None if collect is None else collect.setdefault(src.name, {}),
            **kwargs,
        )
        out.update({f"{src.name}/{k}": v for k, v in part.items()})
    if spec.score:
        missing = [k for k in spec.score if k not in out]
        if missing:
            raise InputError(spec.path, f"score names metrics {missing} that validation does not give")
        parts = [out[k] for k in spec.score]
    else:
        parts = [out[f"{s.name}/score"] for s in spec.sources]
    finite = [float(v) for v in parts if isinstance(v, float | int) and math.isfinite(v)]
    out["score"] = float(np.mean(finite)) if finite else 0.0
    out["skipped"] = int(sum(out.get(f"{s.name}/skipped", 0) for s in spec.sources))
    return out
