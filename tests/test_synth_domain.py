"""Domain-randomised rendering for pretraining: the same galaxies, observed many ways."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.data import synth
from zoo.data.synth_config import CLASSES
from zoo.data.synth_domain import random_stretch, render_randomised
from zoo.errors import ConfigError


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("bands", [1, 3])
def test_every_class_renders_with_its_parameters(kind, bands):
    image, params = render_randomised(kind, np.random.default_rng(3), 48, bands)
    assert image.shape == (48, 48, bands) and image.dtype == np.float32
    assert np.isfinite(image).all()
    assert set(params) == set(synth.PARAMETERS)
    assert params["size"] > 0


def test_a_seeded_generator_gives_the_same_image_and_seeds_differ():
    first, _ = render_randomised("loose_spiral", np.random.default_rng(7))
    again, _ = render_randomised("loose_spiral", np.random.default_rng(7))
    other, _ = render_randomised("loose_spiral", np.random.default_rng(8))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_observing_conditions_vary_far_more_than_in_the_survey_renderer():
    """The point of randomising: background noise and apparent size spread wider."""

    def spread(render):
        noise, sizes = [], []
        for index in range(60):
            image, params = render("smooth_round", synth._image_rng(1, "smooth_round", index))
            noise.append(synth._robust_noise(image[..., 0]))
            sizes.append(params["size"])
        return np.log(np.percentile(noise, 90) / np.percentile(noise, 10)), np.ptp(sizes)

    survey_noise, survey_sizes = spread(synth.render_galaxy_with_parameters)
    random_noise, random_sizes = spread(render_randomised)
    assert random_noise > 1.5 * survey_noise
    assert random_sizes > 1.5 * survey_sizes


def test_random_stretches_give_8_bit_images_that_keep_the_galaxy():
    image, _ = render_randomised("smooth_round", np.random.default_rng(0), 64, 3)
    for seed in range(8):
        pixels = random_stretch(image * 50, np.random.default_rng(seed))  # a bright galaxy
        assert pixels.dtype == np.uint8 and pixels.shape == image.shape
        centre, corner = pixels[24:40, 24:40].mean(), pixels[:8, :8].mean()
        assert centre > corner + 20, seed


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="unknown galaxy class"):
        render_randomised("cat", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="bands"):
        render_randomised("merger", np.random.default_rng(0), bands=9)
