"""Generator and Discriminator: shapes at every size, the paper's layers and init, PAPER defaults."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from dcgan_lit.model.networks import (
    CLASS_EMBEDDING_DIM,
    SUPPORTED_SIZES,
    ClassMap,
    Discriminator,
    Generator,
    count_parameters,
    init_weights,
)
from tests.helpers.config import CONF_DIR


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SUPPORTED_SIZES)
def test_shapes_every_size_and_channel_count(size, channels):
    generator = Generator(latent_dim=100, image_size=size, channels=channels, ngf=8)
    discriminator = Discriminator(image_size=size, channels=channels, ndf=8)
    images = generator(torch.randn(2, 100, 1, 1))
    assert images.shape == (2, channels, size, size)
    assert images.abs().max() <= 1.0  # Tanh output
    assert discriminator(images).shape == (2,)
    # depth = log2(size) - 2 stride-2 layers after the 4x4 projection
    strided = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)]
    assert len(strided) == size.bit_length() - 3


def test_generator_accepts_flat_latents():
    generator = Generator(image_size=32, channels=1, ngf=8)
    assert generator(torch.randn(3, 100)).shape == (3, 1, 32, 32)


def test_dcgan64_has_the_reference_layer_shapes():
    generator = Generator(latent_dim=100, image_size=64, channels=3, ngf=64)
    discriminator = Discriminator(image_size=64, channels=3, ndf=64)
    g_convs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    d_convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in g_convs] == [
        (100, 512),
        (512, 256),
        (256, 128),
        (128, 64),
        (64, 3),
    ]
    assert [(m.in_channels, m.out_channels) for m in d_convs] == [
        (3, 64),
        (64, 128),
        (128, 256),
        (256, 512),
        (512, 1),
    ]
    assert all(m.kernel_size == (4, 4) for m in g_convs + d_convs)
    # The PyTorch DCGAN example's parameter counts
    assert count_parameters(generator) == 3_576_704
    assert count_parameters(discriminator) == 2_765_568


def test_discriminator_batchnorm_on_every_layer_but_first_and_no_linear():
    discriminator = Discriminator(image_size=64, channels=3, ndf=64)
    layers = list(discriminator.features)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules()) == 3
    assert all(m.negative_slope == 0.2 for m in discriminator.modules() if isinstance(m, nn.LeakyReLU))
    for net in (discriminator, Generator()):
        assert not any(isinstance(m, nn.Linear | nn.MaxPool2d | nn.AvgPool2d) for m in net.modules())


def test_generator_activation_is_configurable():
    assert any(isinstance(m, nn.ReLU) for m in Generator(image_size=32).modules())
    leaky = Generator(image_size=32, activation="leaky_relu")
    assert not any(isinstance(m, nn.ReLU) for m in leaky.modules())
    assert any(isinstance(m, nn.LeakyReLU) for m in leaky.modules())
    with pytest.raises(ValueError, match="unknown"):
        Generator(activation="gelu")


def test_unsupported_size_is_refused():
    with pytest.raises(ValueError, match="not supported"):
        Generator(image_size=48)


def test_init_statistics():
    torch.manual_seed(0)
    generator = Generator(image_size=64, channels=3, ngf=64)
    generator.apply(init_weights)
    conv_weights = torch.cat(
        [m.weight.flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    )
    bn = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_weights = torch.cat([m.weight.flatten() for m in bn])
    assert abs(conv_weights.mean().item()) < 1e-3
    assert conv_weights.std().item() == pytest.approx(0.02, rel=0.02)
    assert bn_weights.mean().item() == pytest.approx(1.0, abs=0.005)
    assert bn_weights.std().item() == pytest.approx(0.02, rel=0.15)
    assert all(torch.all(m.bias == 0) for m in bn)


@pytest.mark.parametrize("norm", ["batch", "spectral", "none"])
def test_discriminator_normalisation_is_configurable(norm):
    torch.manual_seed(0)
    discriminator = Discriminator(image_size=32, channels=3, ndf=8, norm=norm)
    discriminator.apply(init_weights)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    batchnorms = [m for m in discriminator.modules() if isinstance(m, nn.BatchNorm2d)]
    spectral = [m for m in convs if parametrize.is_parametrized(m, "weight")]
    assert len(convs) == 4
    assert len(batchnorms) == (2 if norm == "batch" else 0)
    assert len(spectral) == (4 if norm == "spectral" else 0)
    assert discriminator(torch.randn(2, 3, 32, 32)).shape == (2,)
    if norm == "spectral":
        discriminator.train()
        for _ in range(20):  # power iteration converges: the effective weight has spectral norm ~1
            discriminator(torch.randn(2, 3, 32, 32))
        weight = convs[1].weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)
        assert convs[1].parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.2)


def test_unknown_discriminator_norm_is_refused():
    with pytest.raises(ValueError, match="model.d_norm=layer is unknown"):
        Discriminator(image_size=32, norm="layer")


@pytest.mark.parametrize(
    ("size", "g_params", "d_params", "widths"),
    [
        (128, 12_786_560, 11_164_416, [100, 1024, 512, 256, 128, 64, 3]),
        (256, 47_983_488, 44_739_328, [100, 2048, 1024, 512, 256, 128, 64, 3]),
    ],
)
def test_deeper_nets_have_the_readme_sizes(size, g_params, d_params, widths):
    generator = Generator(image_size=size, channels=3, ngf=64)
    discriminator = Discriminator(image_size=size, channels=3, ndf=64)
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [convs[0].in_channels] + [m.out_channels for m in convs] == widths
    assert (count_parameters(generator), count_parameters(discriminator)) == (g_params, d_params)


def test_paper_defaults_are_the_model_configs_and_the_signatures():
    """conf/model/_base.yaml and the defaults of DCGAN, Generator and Discriminator are model.networks.PAPER:
    the config cannot drift from the code."""
    import inspect

    from omegaconf import OmegaConf

    from dcgan_lit.model.module import DCGAN
    from dcgan_lit.model.networks import PAPER

    base = OmegaConf.load(CONF_DIR / "model" / "_base.yaml")
    for key, value in PAPER.items():
        if key == "channels":  # the config takes it from the dataset
            assert OmegaConf.is_interpolation(base, key)
        else:
            assert base[key] == value, key
    module = inspect.signature(DCGAN).parameters
    assert {key: module[key].default for key in PAPER} == PAPER
    for key in ("d_steps", "num_fixed_samples", "channels_last", "compile"):
        assert module[key].default == base[key], key
    generator = inspect.signature(Generator).parameters
    assert {k: generator[k].default for k in ("latent_dim", "image_size", "channels", "ngf")} == {
        k: PAPER[k] for k in ("latent_dim", "image_size", "channels", "ngf")
    }
    assert generator["activation"].default == PAPER["g_activation"]
    discriminator = inspect.signature(Discriminator).parameters
    assert {k: discriminator[k].default for k in ("image_size", "channels", "ndf")} == {
        k: PAPER[k] for k in ("image_size", "channels", "ndf")
    }
    assert discriminator["norm"].default == PAPER["d_norm"]
    for name in ("optimizer_g", "optimizer_d"):  # the paper's Adam, as module.default_adam
        assert base[name].lr == 2e-4 and list(base[name].betas) == [0.5, 0.999]


# -- class-conditional networks: G with a class embedding joined to z, the projection D ----------------------
def conditional_pair(num_classes=3, norm="batch"):
    torch.manual_seed(0)
    names = [f"class{i}" for i in range(num_classes)]
    generator = Generator(image_size=32, channels=3, ngf=8, num_classes=num_classes, class_names=names)
    discriminator = Discriminator(image_size=32, channels=3, ndf=8, norm=norm, num_classes=num_classes)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator.eval(), discriminator.eval()


def test_unconditional_networks_keep_the_paper_state_dict():
    generator = Generator(image_size=32, channels=3, ngf=8)
    discriminator = Discriminator(image_size=32, channels=3, ndf=8)
    assert not any("class" in key or "projection" in key for key in generator.state_dict())
    assert not any("projection" in key for key in discriminator.state_dict())
    assert generator.main[0].in_channels == 100 and generator.num_classes == 0 and generator.class_names == []


def test_conditional_generator_joins_a_class_embedding_to_z():
    generator, _ = conditional_pair()
    assert generator.main[0].in_channels == 100 + CLASS_EMBEDDING_DIM
    assert generator.class_embedding.weight.shape == (CLASS_EMBEDDING_DIM, 3)
    assert generator.class_embedding.weight.std().item() == pytest.approx(1.0, rel=0.2)  # like z ~ N(0, I)
    z = torch.randn(1, 100).repeat(3, 1)
    with torch.no_grad():
        images = generator(z, torch.tensor([0, 1, 2]))
    assert images.shape == (3, 3, 32, 32)
    # the same z in three classes: three different images (a fresh G's outputs are tiny: compare relatively)
    scale = images.abs().max()
    assert (images[0] - images[1]).abs().max() > 0.1 * scale and (
        images[1] - images[2]
    ).abs().max() > 0.1 * scale


def test_class_indices_and_one_hot_weights_give_the_same_images():
    generator, _ = conditional_pair()
    z = torch.randn(4, 100)
    labels = torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        by_index = generator(z, labels)
        by_weights = generator(z, torch.eye(3)[labels])
        unlabelled = generator(z)  # classes cycle 0, 1, 2, 0
        cycled = generator(z, torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(by_index, by_weights)
    torch.testing.assert_close(unlabelled, cycled)


def test_mixed_class_weights_interpolate_the_embedding():
    generator, _ = conditional_pair()
    z = torch.randn(1, 100).repeat(3, 1)
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    embedded = generator.class_embedding(weights)
    torch.testing.assert_close(embedded[1], (embedded[0] + embedded[2]) / 2)
    with torch.no_grad():
        images = generator(z, weights)
        ends = generator(z[:2], torch.tensor([0, 1]))
    torch.testing.assert_close(images[[0, 2]], ends)


def test_conditional_sample_is_seeded_and_takes_labels():
    generator, _ = conditional_pair()
    horses = generator.sample(4, seed=3, labels=torch.full((4,), 1))
    again = generator.sample(4, seed=3, labels=torch.full((4,), 1))
    birds = generator.sample(4, seed=3, labels=torch.full((4,), 2))
    torch.testing.assert_close(horses, again)
    assert (horses - birds).abs().max() > 0.1 * horses.abs().max()
    assert generator.class_index("class2") == 2
    with pytest.raises(ValueError, match="unknown class zebra; the classes are class0, class1, class2"):
        generator.class_index("zebra")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 3]), "class labels must lie in 0..2"),
        (torch.tensor([-1, 0]), "class labels must lie in 0..2"),
        (torch.zeros(2, 4), r"class weights must be \(N, 3\), got \[2, 4\]"),
        (torch.tensor([0, 1, 2]), "one class label"),
    ],
)
def test_bad_labels_are_refused(labels, message):
    generator, _ = conditional_pair()
    with pytest.raises(ValueError, match=message):
        generator.sample(2, seed=0, labels=labels)


def test_an_unconditional_generator_refuses_labels():
    generator = Generator(image_size=32, channels=3, ngf=8)
    with pytest.raises(ValueError, match="unconditional"):
        generator.sample(2, seed=0, labels=torch.tensor([0, 1]))


@pytest.mark.parametrize("norm", ["batch", "spectral", "none"])
def test_projection_discriminator_adds_the_class_inner_product(norm):
    _, discriminator = conditional_pair(norm=norm)
    images = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        conditional = discriminator(images, labels)
        unconditional = discriminator(images)
        features = discriminator.features(images).sum(dim=(2, 3))
        projected = discriminator.projection(torch.eye(3)[labels])
    assert conditional.shape == (4,)
    # Miyato & Koyama 2018, eq. (3): D(x, y) = psi(phi(x)) + y^T V phi(x)
    torch.testing.assert_close(conditional, unconditional + (projected * features).sum(dim=1))
    with torch.no_grad():
        other = discriminator(images, torch.tensor([1, 2, 0, 0]))
    assert (conditional - other).abs().max() > 1e-6
    assert parametrize.is_parametrized(discriminator.projection, "weight") == (norm == "spectral")
    assert not any(isinstance(m, nn.Linear) and not isinstance(m, ClassMap) for m in discriminator.modules())
