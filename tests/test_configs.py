"""Every file of every component config group composes and instantiates."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from archer.interfaces import AdvantageEstimator, Constraint, TokenClassifier

CONF = Path(__file__).resolve().parents[1] / "conf"
PROTOCOLS = {"classifier": TokenClassifier, "constraint": Constraint, "advantage": AdvantageEstimator}


def configs(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group, name", [(g, n) for g in PROTOCOLS for n in configs(g)])
def test_component_config_composes_and_instantiates(group, name):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name=f"{group}/{name}")
    component = instantiate(cfg[group])
    assert isinstance(component, PROTOCOLS[group])


def test_groups_are_not_empty():
    for group in PROTOCOLS:
        assert len(configs(group)) >= 3, group
