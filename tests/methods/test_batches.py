"""The training augmentations shared by the methods."""

import numpy as np
import pytest

from edgereid.methods.batches import pad_and_crop, random_erasing


def test_pad_and_crop_cuts_a_shifted_window_of_the_padded_crop():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (6, 20, 10, 3), dtype=np.uint8)
    out = pad_and_crop(images, 4, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for i in range(len(images)):
        windows = [(r, c) for r in range(9) for c in range(9)
                   if np.array_equal(padded[i, r:r + 20, c:c + 10], out[i])]
        assert windows, i
    assert not all(np.array_equal(a, b) for a, b in zip(out, images))  # some crops moved
    assert pad_and_crop(images, 0, rng) is images


def test_random_erasing_fills_one_rectangle_per_chosen_crop_with_noise():
    batch = np.zeros((200, 3, 32, 16), np.float32)
    random_erasing(batch, 0.5, np.random.default_rng(0))
    erased = np.abs(batch).sum(axis=(1, 2, 3)) > 0
    assert 0.35 < erased.mean() < 0.65
    for image in batch[erased]:
        rows, cols = np.flatnonzero(np.abs(image).sum(axis=(0, 2))), np.flatnonzero(np.abs(image).sum(axis=(0, 1)))
        area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        assert 0.01 * 32 * 16 <= area <= 0.4 * 32 * 16  # one rectangle of 2-33 % of the crop (rounded)
        assert np.count_nonzero(image[0]) == area  # filled, every pixel inside, nothing outside
    untouched = np.zeros((4, 3, 8, 8), np.float32)
    random_erasing(untouched, 0.0, np.random.default_rng(0))
    assert not untouched.any()


def test_ahead_keeps_the_order_prepares_on_a_loader_thread_and_stops_when_closed():
    import threading

    from edgereid.methods.batches import ahead

    threads = []

    def items():
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(ahead(items(), 3)) == list(range(50))
    assert set(threads) == {"batch-loader"}
    threads.clear()
    assert list(ahead(items(), 0)) == list(range(50)) and set(threads) == {threading.current_thread().name}
    threads.clear()
    early = ahead(items(), 2)
    assert next(early) == 0
    early.close()  # the consumer stops: the loader must not keep producing or hang
    assert not any(t.name == "batch-loader" for t in threading.enumerate()) and len(threads) < 50


def test_an_error_in_the_loader_reaches_the_consumer_at_its_batch():
    from edgereid.methods.batches import ahead

    def items():
        yield from range(3)
        raise ValueError("crop 3 is unreadable")

    seen = []
    with pytest.raises(ValueError, match="crop 3"):
        for item in ahead(items(), 2):
            seen.append(item)
    assert seen == [0, 1, 2]
