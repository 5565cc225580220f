"""Write fixtures/marc/demo_main.iso: the demo main catalogue (CNMARC, UTF-8, 995 copies).

The first record is the seed's own example (Shanghai Library's copy of *The Cambridge History
of China*, v.7: location 综合阅览室-1楼, call number K20/C178/v.7/, status 归还, type
参考外借资料, barcode 54122100517423). The others are ordinary Chinese books described as
Chinese catalogues describe them, with copies in libgate's 995 layout. Run from the project
root: `python scripts/make_demo_catalogue.py`.
"""

from __future__ import annotations

from pathlib import Path

from marc.record import Field, MarcRecord
from marc.writer import canonical, to_iso2709

LIBRARY = "上海图书馆"


def coded_100(year: str, script: str = "ea") -> str:
    value = f"20240115d{year}    em y0chiy50      {script}"
    assert len(value) == 36, value
    return value


def copy(
    barcode: str, location: str, call_number: str, item_type: str, status: str = "归还"
) -> Field:
    return Field(
        "995",
        "  ",
        [
            ("b", LIBRARY),
            ("e", location),
            ("k", call_number),
            ("r", item_type),
            ("s", status),
            ("f", barcode),
        ],
    )


def book(
    control: str,
    isbn: str,
    title: list[tuple[str, str]],
    year: str,
    place: str,
    publisher: str,
    extent: str,
    names: list[tuple[str, str, str]],
    subjects: list[str],
    clc: str,
    copies: list[Field],
    language: str = "chi",
    series: str = "",
    summary: str = "",
    script: str = "ea",
) -> MarcRecord:
    fields = [
        Field("001", value=control),
        Field("005", value="20240115093000.0"),
        Field("010", "  ", [("a", isbn)]),
        Field("100", "  ", [("a", coded_100(year, script))]),
        Field("101", "0 ", [("a", language)]),
        Field("102", "  ", [("a", "CN" if language == "chi" else "GB")]),
        Field("200", "1 ", title),
        Field("210", "  ", [("a", place), ("c", publisher), ("d", year)]),
        Field("215", "  ", [("a", extent)]),
    ]
    if series:
        fields.append(Field("225", "2 ", [("a", series)]))
    if summary:
        fields.append(Field("330", "  ", [("a", summary)]))
    fields += [Field("606", "0 ", [("a", s)]) for s in subjects]
    fields.append(Field("690", "  ", [("a", clc), ("v", "5")]))
    for tag, name, role in names:
        fields.append(
            Field(tag, " 0" if tag.startswith("70") else "02", [("a", name), ("4", role)])
        )
    fields.append(Field("801", " 0", [("a", "CN"), ("b", "SHL"), ("c", "20240115")]))
    fields += copies
    return MarcRecord("00000nam0 2200000   450 ", fields)


RECORDS = [
    book(
        "SHL000000001",
        "0-521-24332-7",
        [
            ("a", "The Cambridge history of China"),
            ("h", "v.7"),
            ("i", "The Ming Dynasty, 1368-1644, pt. 1"),
            ("f", "edited by Frederick W. Mote"),
        ],
        "1988",
        "Cambridge",
        "Cambridge University Press",
        "xxv, 976 p.",
        [
            ("701", "Twitchett, Denis Crispin", "编"),
            ("701", "Fairbank, John King", "编"),
            ("701", "Mote, Frederick W.", "编"),
        ],
        ["China -- History"],
        "K20",
        [copy("54122100517423", "综合阅览室-1楼", "K20/C178/v.7/", "参考外借资料")],
        language="eng",
        script="ba",
    ),
    book(
        "SHL000000002",
        "7-5004-1126-8",
        [("a", "剑桥中国明代史"), ("h", "上卷"), ("f", "牟复礼, 崔瑞德编"), ("g", "张书生等译")],
        "1992",
        "北京",
        "中国社会科学出版社",
        "1044页",
        [("701", "牟复礼", "编"), ("701", "崔瑞德", "编"), ("702", "张书生", "译")],
        ["中国历史 -- 明代"],
        "K248",
        [
            copy("54122100600011", "综合阅览室-1楼", "K248/M68/1", "参考外借资料"),
            copy("54122100600012", "中文书库", "K248/M68/1", "普通外借资料", "借出"),
        ],
        series="剑桥中国史",
    ),
    book(
        "SHL000000003",
        "978-7-02-000220-7",
        [("a", "红楼梦"), ("f", "曹雪芹, 高鹗著")],
        "1982",
        "北京",
        "人民文学出版社",
        "3册",
        [("701", "曹雪芹", "著"), ("701", "高鹗", "著")],
        ["章回小说 -- 中国 -- 清代"],
        "I242.47",
        [
            copy("54122100600021", "中文书库", "I242.47/C12", "普通外借资料"),
            copy("54122100600022", "中文书库", "I242.47/C12", "普通外借资料"),
        ],
        summary="中国古典长篇小说，以贾宝玉、林黛玉的爱情悲剧为主线。",
    ),
    book(
        "SHL000000004",
        "978-7-5325-5001-5",
        [("a", "中国历史地图集"), ("h", "第七册"), ("i", "元·明时期"), ("f", "谭其骧主编")],
        "1996",
        "北京",
        "中国地图出版社",
        "118页",
        [("701", "谭其骧", "主编")],
        ["历史地图 -- 中国"],
        "K992.6",
        [copy("54122100600031", "综合阅览室-1楼", "K992.6/T12/7", "阅览资料")],
    ),
    book(
        "SHL000000005",
        "978-7-108-01234-5",
        [("a", "万历十五年"), ("f", "黄仁宇著")],
        "1997",
        "北京",
        "生活·读书·新知三联书店",
        "301页",
        [("701", "黄仁宇", "著")],
        ["中国历史 -- 明代 -- 通俗读物"],
        "K248.09",
        [copy("54122100600041", "中文书库", "K248.09/H77", "普通外借资料")],
    ),
    book(
        "SHL000000006",
        "978-7-5447-0227-6",
        [("a", "傲慢与偏见"), ("f", "奥斯丁著"), ("g", "王科一译")],
        "2008",
        "南京",
        "译林出版社",
        "318页",
        [("701", "奥斯丁", "著"), ("702", "王科一", "译")],
        ["长篇小说 -- 英国 -- 近代"],
        "I561.44",
        [copy("54122100600051", "外国文学书库", "I561.44/A93", "普通外借资料")],
        series="世界文学名著",
    ),
    book(
        "SHL000000007",
        "978-7-5617-6891-2",
        [
            ("a", "中国图书馆分类法"),
            ("e", "第五版"),
            ("f", "国家图书馆《中国图书馆分类法》编辑委员会编"),
        ],
        "2010",
        "北京",
        "国家图书馆出版社",
        "1189页",
        [("711", "国家图书馆", "编")],
        ["图书分类法 -- 中国"],
        "G254.122",
        [copy("54122100600061", "参考工具书阅览室", "G254.122/Z66", "阅览资料")],
    ),
]


def main() -> None:
    target = Path("fixtures/marc/demo_main.iso")
    with target.open("wb") as out:
        for record in RECORDS:
            out.write(to_iso2709(canonical(record, "unimarc"), "unimarc"))
    print(f"wrote {len(RECORDS)} records to {target}")


if __name__ == "__main__":
    main()
