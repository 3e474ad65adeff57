"""Every name a subpackage exports imports from it and is the object of its defining module."""

import importlib

import pytest

SUBPACKAGES = ("plastic.learn", "plastic.neural", "plastic.observe")


@pytest.mark.parametrize("package_name", SUBPACKAGES)
def test_subpackage_all_names_are_the_defining_objects(package_name):
    package = importlib.import_module(package_name)
    assert package.__all__, package_name
    assert len(set(package.__all__)) == len(package.__all__)
    for name in package.__all__:
        exported = getattr(package, name)
        defining = importlib.import_module(exported.__module__)
        assert getattr(defining, name) is exported, (package_name, name)


def test_learn_exports_the_trainers():
    from plastic.learn import STDP, KernelSTDP, TripletSTDP
    from plastic.learn.kernel_stdp import KernelSTDP as kernel_stdp
    from plastic.learn.stdp import STDP as stdp
    from plastic.learn.triplet import TripletSTDP as triplet

    assert (KernelSTDP, STDP, TripletSTDP) == (kernel_stdp, stdp, triplet)


def test_top_level_names_still_import():
    import plastic

    for name in plastic.__all__:
        assert getattr(plastic, name) is not None, name
