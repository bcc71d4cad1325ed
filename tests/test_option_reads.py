"""option_reads finds the option keys code reads, from its source."""

from copy import deepcopy

from realesrgan_ext.option_reads import ANY, class_reads, keys_at, metric_data_keys, pipeline_reads


class Base:
    def __init__(self, opt):
        self.opt = opt
        self.io_opt = opt["io_backend"]

    def setup(self):
        train_opt = self.opt["train"]
        self.ema = train_opt.get("ema_decay", 0)
        sched = deepcopy(train_opt["scheduler"])
        sched.pop("type")
        if "pixel_opt" in train_opt:
            pass
        self.io_opt.get("client_keys")


class Child(Base):
    def step(self):
        logger = self.opt.get("logger") or {}
        keep = logger.get("keep_checkpoints")
        for _name, metric in self.opt["val"]["metrics"].items():
            metric.get("better", "higher")
        self.metric_data = {}
        self.metric_data["img"] = keep
        return self.opt[f"pretrain_{keep}"]  # computed: not seen


def test_reads_through_names_attributes_copies_loops_and_bases():
    reads = class_reads(Child)
    assert reads[()] >= {"io_backend", "train", "logger", "val"}
    assert reads[("train",)] == {"ema_decay", "scheduler", "pixel_opt"}
    assert reads[("train", "scheduler")] == {"type"}
    assert reads[("logger",)] == {"keep_checkpoints"}
    assert reads[("io_backend",)] == {"client_keys"}
    assert keys_at(reads, ("val", "metrics", "psnr")) == {"better"}
    assert metric_data_keys(Child) == {"img"}
    assert not any(k.startswith("pretrain") for k in reads[()])


def test_basicsr_pipeline_reads_follow_calls_and_loops():
    reads = pipeline_reads()
    assert {"name", "model_type", "num_gpu", "manual_seed", "datasets", "path", "logger"} <= reads[()]
    assert {"batch_size_per_gpu", "num_worker_per_gpu", "dataset_enlarge_ratio", "prefetch_mode"} <= keys_at(
        reads, ("datasets", "val_2"))  # build_dataloader(dataset, dataset_opt) inside a loop over phases
    assert reads[("logger", "wandb")] == {"project", "resume_id"}  # init_wandb_logger(opt)
    assert ANY in reads[("dist_params",)]  # init_dist(launcher, **opt['dist_params']) takes **kwargs
