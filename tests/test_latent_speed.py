"""The latent-vs-pixel speed benchmark's table (the measurement itself is in benchmarks/)."""

from benchmarks.latent_speed import command_of, markdown

RESULT = {
    "image_shape": [64, 64, 3], "batch_size": 64, "timed_steps_per_round": 3, "rounds": 3, "sample_n": 32,
    "sample_steps": 50, "machine": {"load_average_1min": 1.5},
    "parameters": {"diffusion": 2_632_102, "latent_diffusion": 2_195_942},
    "train_images_per_second": {"diffusion": 50.0, "latent_diffusion": 400.0,
                                "latent_diffusion_autoencoder_stage": 100.0},
    "sample_images_per_second": {"diffusion": 2.5, "latent_diffusion": 15.0},
}


def test_each_row_is_divided_by_pixel_diffusion():
    table = markdown(RESULT)
    assert "| diffusion | 2.63M | 50 | 1.0× | 2.5 | 1.0× |" in table
    assert "| latent_diffusion | 2.20M | 400 | 8.0× | 15.0 | 6.0× |" in table
    assert "| latent_diffusion, a step of its autoencoder stage |  | 100 | 2.0× |  |  |" in table
    assert "encoding every batch" not in table  # a row the run did not measure is left out


def test_the_command_is_the_recorded_one_or_rebuilt_from_the_recorded_options():
    assert command_of({**RESULT, "command": "python -m benchmarks.latent_speed --rounds 5"}).endswith("--rounds 5")
    assert command_of(RESULT) == ("python -m benchmarks.latent_speed --size 64 --channels 3 --batch-size 64 "
                                  "--steps 3 --rounds 3 --sample-n 32 --sample-steps 50")
