"""What a benchmark ran on, for its JSON: device, CPU or GPU name, cores, RAM, versions."""

import os
import platform

GB = 1e9  # decimal GB, as GPUs are sold: "24 GB", "80 GB"


def machine_info(device: str) -> dict:
    import torch
    import transformers

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            name = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), name)
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB if hasattr(os, "sysconf") else 0.0
    info = {"device": device, "device_name": f"CPU ({name})", "cpu_cores": os.cpu_count(), "ram_gb": ram,
            "torch": torch.__version__, "transformers": transformers.__version__, "platform": platform.platform()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(device_name=props.name, gpu_memory_gb=props.total_memory / GB)
    return info
