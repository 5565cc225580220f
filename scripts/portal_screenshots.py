"""Screenshots of the readers' portal for the README (desktop and phone), taken from a real
`libgate serve` over the demo catalogue in a temporary directory, driven by Debian's chromium.

    .venv/bin/python scripts/portal_screenshots.py [OUTPUT_DIR]   # default docs/screenshots

It loads the demo data into a fresh SQLite store, lends two copies at the desk so that a hold
can be placed, starts the gateway, and walks the seed's reservation guide in the browser.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
LIBGATE = str(Path(sys.executable).with_name("libgate"))
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(config: Path, *args: str) -> None:
    subprocess.run([LIBGATE, "--config", str(config), *args], check=True, capture_output=True)


def prepare(home: Path, port: int) -> Path:
    config = home / "libgate.toml"
    ill_port = free_port()
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"

[service]
workers = 1

[sip2]
listen = []
[sru]
listen = []
[z3950]
listen = []

[notices]
enabled = false

[ill]
listen = ["tcp:{ill_port}:interface=127.0.0.1"]
agency_id = "ISIL:CN-SHL"

[[ill.partners]]
agency_id = "ISIL:CN-PKU"
name = "北京大学图书馆"
url = "http://127.0.0.1:9/iso18626"

[web]
listen = ["tcp:{port}:interface=127.0.0.1"]
timezone = "Asia/Shanghai"
""",
        encoding="utf-8",
    )
    fixtures = REPO / "fixtures"
    run(config, "init")
    run(config, "load", "--database", "main", str(fixtures / "marc/demo_main.iso"))
    bnu = fixtures / "marc/real/cnmarc/bnu_cnmarc_10_utf8.iso"
    run(config, "load", "--database", "main", "--profile", "bnu", str(bnu))
    for name in ("japanese_cnmarc.iso", "japanese_readings.iso"):
        run(config, "load", "--database", "japanese", str(fixtures / "marc/japanese" / name))
    run(config, "items", "import", str(fixtures / "items/demo_items.csv"))
    run(config, "patrons", "import", str(fixtures / "patrons/demo_patrons.csv"))
    run(config, "ill", "readers", "confirm", "P0001")
    return config


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("the gateway did not start")


def shoot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print(f"wrote {out / name}.png")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = prepare(Path(tmp), port)
        # 明代史's three copies: two lent at the desk, so the title can be reserved.
        server = subprocess.Popen(
            [LIBGATE, "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        try:
            wait_for(port)
            base = f"http://127.0.0.1:{port}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                desktop = browser.new_page(viewport={"width": 1200, "height": 800})
                desktop.goto(f"{base}/search?q=明代")
                shoot(desktop, out, "desktop-results")
                desktop.get_by_role("link", name="剑桥中国明代史").first.click()
                shoot(desktop, out, "desktop-record")
                # Lend every copy of 万历十五年 and one of 明代史 at the desk, charge a fee.
                desktop.goto(f"{base}/search?q=万历十五年")
                desktop.locator("ol.results a").first.click()
                record_url = desktop.url
                barcodes = desktop.locator("td[data-label='馆藏条码']").all_inner_texts()
                for barcode in barcodes:
                    run(config, "circ", "checkout", "P0002", barcode.strip())
                run(config, "circ", "checkout", "P0001", "54122100600011")
                run(
                    config,
                    "circ",
                    "fee",
                    "add",
                    "P0001",
                    "1.50",
                    "--kind",
                    "overdue",
                    "--description",
                    "超期 3 天",
                )
                desktop.goto(f"{base}/login")
                desktop.get_by_label("读者证号").fill("P0001")
                desktop.get_by_label("密码").fill("1234")
                desktop.get_by_role("button", name="登录").click()
                desktop.goto(record_url)
                desktop.get_by_role("button", name="预约申请").click()
                shoot(desktop, out, "desktop-hold-confirm")
                desktop.get_by_label("预约框：我要预约此书").check()
                desktop.get_by_role("button", name="确认预约").click()
                shoot(desktop, out, "desktop-hold-placed")
                desktop.goto(f"{base}/my")
                shoot(desktop, out, "desktop-my-library")
                desktop.goto(f"{base}/my/ill/new?lang=en")
                shoot(desktop, out, "desktop-ill-form-en")
                desktop.goto(f"{base}/?lang=zh")
                phone = browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True)
                phone.goto(f"{base}/m/")
                phone.get_by_label("检索词").fill("夏目漱石")
                phone.get_by_role("button", name="检索").click()
                shoot(phone, out, "phone-results")
                phone.goto(f"{base}/search?db=japanese&q=わがはい")
                phone.locator("ol.results a").first.click()
                shoot(phone, out, "phone-record")
                phone.goto(f"{base}/login?next=/my")
                phone.get_by_label("读者证号").fill("P0001")
                phone.get_by_label("密码").fill("1234")
                phone.get_by_role("button", name="登录").click()
                shoot(phone, out, "phone-my-library")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
