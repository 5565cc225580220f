"""Deterministic generator of realistic CNMARC (UNIMARC) ISO 2709 files for benchmarks.

    python bench/generate_cnmarc.py --records 100000 --encoding utf-8 --seed 1 -o out.iso

Records mix Chinese (about 60 %), Japanese (15 %) and Latin-script (25 %) books with titles,
authors, publishers and subjects composed from the word lists below, so that most titles are
distinct while a few words are very common (as in a real catalogue). Copies are in 995 in
libgate's own holdings profile `libgate` ($b library, $e location, $k call number, $r item
type, $s status, $f barcode). The same seed gives the same bytes, and the first K records of
an N-record file are the first K records of any longer file with that seed.

The file is written as it is generated (memory stays flat for millions of records). 100$a/26-29
says `50  ` (UTF-8) in UTF-8 files and `0120` (ISO 646 + the GB set) in GB18030 files.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

# --- word lists (written for this generator) ---------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Order matters: words near the front of a list are drawn more often (see `_skewed`).

ZH_WORDS = _words("""
中国 研究 发展 问题 理论 社会 经济 文化 历史 现代 管理 教育 技术 科学 文学 世界 方法 实践
基础 应用 系统 分析 政策 改革 思想 艺术 语言 法律 制度 城市 环境 信息 网络 数据 设计 工程
政治 哲学 传统 国际 比较 创新 战略 市场 企业 金融 产业 农村 生态 资源 能源 人口 民族 宗教
文明 近代 当代 古代 概论 导论 教程 原理 手册 词典 文集 选集 论文 报告 调查 评论 探索 视角
心理 人生 生活 故事 小说 诗歌 散文 戏剧 电影 音乐 美术 书法 绘画 摄影 旅游 地理 天文 物理
化学 生物 数学 统计 会计 审计 税收 财政 银行 投资 贸易 工业 农业 交通 建筑 医学 健康 药物
营养 体育 军事 外交 安全 治理 公共 行政 组织 人才 知识 智能 计算 软件 算法 编程 电子 通信
机械 材料 化工 水利 海洋 气候 森林 土地 空间 区域 乡村 都市 家庭 婚姻 儿童 青年 老年 女性
伦理 道德 美学 逻辑 认知 意识 精神 价值 观念 形象 记忆 身份 权力 秩序 边疆 丝路 运河 长江
黄河 江南 岭南 西域 敦煌 长安 洛阳 杭州 苏州 北京 上海 广州 明清 唐宋 汉魏 先秦 民国 晚清
儒学 佛学 道家 经学 史学 诗学 词学 小学 考据 版本 目录 校勘 文献 档案 图书 出版 印刷 阅读
传播 媒体 新闻 广告 品牌 消费 服务 物流 供应链 电商 平台 创业 职业 劳动 就业 收入 分配 保障
医疗 养老 住房 教学 课程 学习 考试 大学 学术 科研 实验 观测 模型 仿真 优化 控制 检测 质量
标准 规范 评价 指标 风险 危机 冲突 合作 协调 转型 变迁 演化 起源 形成 兴衰 复兴 回顾 展望
纪实 传记 回忆 书信 日记 笔记 随笔 游记 札记 讲义 讲演 对话 访谈 译丛 新论 通史 简史 大全
""")

ZH_CONNECTORS = ["的", "与", "和", "及其", "中的", "视野下的", "背景下的", "之"]
ZH_TAILS = ["研究", "探析", "概论", "导论", "新论", "论集", "史", "史论", "初探", "教程", "读本"]

ZH_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
) + ["欧阳", "司马", "诸葛", "上官", "司徒"]
ZH_GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红文辉玉兰斌宇浩凯健俊峰晨"
    "鹏飞云鑫波宁瑞婷琳欣怡子涵思远博文昊然梓萱雨泽嘉铭佳怡晓东立新振华海燕春梅秋菊冬雪德明"
    "永清卫东晓光宏伟振宇世杰承志维汉书勤若愚一鸣少白亦舒之江"
)
ZH_ROLES = ["著", "著", "著", "编著", "主编", "编", "译", "校注", "撰"]

JA_KANJI = _words("""
日本 歴史 文化 社会 経済 研究 入門 物語 時代 世界 文学 思想 近代 現代 戦後 昭和 明治 江戸
東京 京都 大阪 都市 地域 言語 教育 政治 外交 技術 科学 哲学 宗教 仏教 神道 芸術 美術 音楽
映画 漫画 小説 詩集 随筆 日記 紀行 季節 自然 環境 家族 生活 食文化 料理 庭園 建築 茶道 書道
武士 天皇 平安 鎌倉 室町 戦国 幕末 維新 大正 平成 令和 国家 民主 憲法 法律 企業 経営 組織
労働 雇用 金融 市場 産業 農業 漁業 地方 村落 祭礼 民俗 伝承 神話 昔話 古典 和歌 俳句 能楽
歌舞伎 浮世絵 陶磁 工芸 着物 旅館 温泉 鉄道 港町 城下町 島国 東アジア 中国 朝鮮 台湾 満洲
心理 認知 記憶 言葉 文字 翻訳 出版 読書 図書館 情報 通信 放送 新聞 雑誌 広告 消費 医療
福祉 介護 高齢化 少子化 人口 災害 地震 復興 原発 安全 平和 戦争 占領 冷戦 国際 関係 比較
思想史 精神史 文明論 身体 感情 倫理 正義 自由 権力 公共 市民 共同体 伝統 近世 中世 古代
考古学 人類学 社会学 心理学 経済学 政治学 言語学 数学 物理学 化学 生物学 医学 薬学 工学
情報学 統計学 図書 史料 文書 記録 資料 索引 目録 地図 風景 旅行 散歩 料理人 職人 商人 農民
""")
JA_KANA = _words("""
こころ ことば くらし まち ひと もの かたち いのち うた ものがたり はじめて やさしい たのしい
ふしぎ あした むかし いま みらい ゆめ そら うみ やま かわ はな ほし つき ひかり かげ まなび
システム デザイン マネジメント ビジネス コンピュータ データ ネットワーク プログラミング アジア
ヨーロッパ アメリカ グローバル メディア コミュニケーション エネルギー マーケティング アート
テクノロジー イノベーション ガイド ハンドブック レッスン ノート エッセイ ストーリー ミステリー
""")
JA_PARTICLES = ["の", "と", "における", "から見た", "への", "をめぐる", "と", "の"]
JA_TAILS = [
    "入門",
    "研究",
    "史",
    "論",
    "講義",
    "の世界",
    "のすすめ",
    "事典",
    "読本",
    "ハンドブック",
]
JA_SURNAMES = _words("""
佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林
斎藤 清水 山崎 森 池田 橋本 阿部 石川 山下 中島 石井 小川 前田 岡田 長谷川 藤田 後藤 近藤
村上 遠藤 青木 坂本 福田 太田 西村 藤井 金子 岡本 藤原 中野 三浦 原田 中川 松田 竹内 小野
田村 中山 和田 石田 森田 上田 原 柴田 酒井 工藤 横山 宮崎 宮本 内田 高木 安藤 島田 谷口
大野 高田 丸山 今井 河野 藤本 村田 武田 上野 杉山 増田 小山 大塚 平野 菅原 久保 松井 千葉
""")
JA_GIVEN = _words("""
太郎 一郎 健 誠 浩 明 隆 博 修 茂 清 勝 豊 稔 進 正 実 和夫 正夫 健一 浩二 大輔 翔太 拓也
直樹 花子 洋子 恵子 裕子 美香 由美 真理子 さくら 陽子 幸子 京子 智子 久美子 明美 めぐみ
あゆみ ひろみ 俊介 健太 悠人 蓮 結衣 陽菜 美咲 真一 哲也 聡 亮 剛 淳 徹 学 優子 香織 千尋
""")
JA_ROLES = ["著", "著", "編", "編著", "訳", "監修"]

EN_WORDS = _words("""
history culture society economy theory practice introduction modern world politics language
literature science technology management education philosophy art law China Japan Asia Europe
America development policy reform state power market trade finance capital labor industry city
urban rural environment nature climate energy water land empire revolution war peace nation
identity religion Buddhism Confucianism tradition memory knowledge information data network
computing software systems design engineering analysis methods research studies perspectives
global local regional comparative critical cultural social economic political historical
international public private family women children youth migration population health medicine
body mind psychology cognition ethics aesthetics logic reason truth meaning writing reading
translation print books libraries archives museums media film music painting poetry fiction
drama novel stories essays letters diaries travel journeys frontier border ocean river mountain
island silk road route maritime Pacific Atlantic Mediterranean Shanghai Beijing Tokyo Kyoto Hong
Kong Taiwan Korea Tibet Mongolia Manchuria Canton Nanjing Ming Qing Song Tang Han Edo Meiji Showa
dynasty empire republic modernity colonialism socialism capitalism democracy authority governance
law courts justice rights citizenship class gender race ethnicity community village household
commerce merchants money credit banks statistics mathematics physics chemistry biology ecology
geography astronomy architecture gardens food tea porcelain silk textiles craft design making
materials machines algorithms learning intelligence networks security privacy risk crisis change
transformation continuity origins rise fall revival legacy encounters exchange connections
landscape heritage ritual festival myth folklore scholarship examination bureaucracy officials
scholars monks pilgrims sailors farmers workers students teachers readers writers artists poets
philosophers scientists engineers doctors soldiers diplomats missionaries traders emperors
courts palaces temples cities ports provinces frontiers networks institutions reforms movements
ideas values beliefs images objects things places spaces times seasons voices lives worlds
""")
EN_PATTERNS = [
    "The {A} of {B}",
    "{A} and {B}",
    "{A} and {B} in {C}",
    "A History of {A}",
    "An Introduction to {A}",
    "{A} in the {C} World",
    "Rethinking {A}",
    "The {A} of {B} and {C}",
    "{A}, {B}, and {C}",
    "{A}: {B} and {C}",
    "Handbook of {A} {B}",
    "Essays on {A}",
    "{A} {B}",
]
EN_FIRST = _words("""
John Mary James Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel
Matthew Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald
Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Frank
Elizabeth Patricia Jennifer Linda Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Margaret
Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah Stephanie Rebecca
Sharon Laura Cynthia Kathleen Amy Angela Helen Anna Brenda Pamela Emma Nicole Samantha Katherine
""")
EN_LAST = _words("""
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker
Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards
Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson
Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood Bennett Gray
Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Fairbank
Needham Spence Elman Brook Pomeranz Rowe Elvin Mote Twitchett Dower Gluck Jansen Reischauer
""")
EN_ROLES = ["著", "著", "编", "author", "editor", "译"]

ZH_PUBLISHERS = [
    ("北京", "人民出版社"),
    ("北京", "商务印书馆"),
    ("北京", "中华书局"),
    ("北京", "科学出版社"),
    ("北京", "高等教育出版社"),
    ("北京", "北京大学出版社"),
    ("北京", "清华大学出版社"),
    ("上海", "上海古籍出版社"),
    ("北京", "人民文学出版社"),
    ("北京", "中国社会科学出版社"),
    ("北京", "生活·读书·新知三联书店"),
    ("上海", "上海人民出版社"),
    ("上海", "复旦大学出版社"),
    ("上海", "华东师范大学出版社"),
    ("杭州", "浙江大学出版社"),
    ("北京", "机械工业出版社"),
    ("北京", "电子工业出版社"),
    ("北京", "化学工业出版社"),
    ("北京", "法律出版社"),
    ("北京", "中信出版社"),
    ("南京", "译林出版社"),
    ("北京", "作家出版社"),
    ("北京", "外语教学与研究出版社"),
    ("上海", "上海译文出版社"),
    ("桂林", "广西师范大学出版社"),
    ("南京", "南京大学出版社"),
    ("武汉", "武汉大学出版社"),
    ("广州", "广东人民出版社"),
    ("成都", "四川人民出版社"),
    ("西安", "陕西师范大学出版社"),
    ("长沙", "湖南教育出版社"),
    ("天津", "天津人民出版社"),
    ("济南", "山东人民出版社"),
    ("郑州", "中州古籍出版社"),
    ("上海", "上海辞书出版社"),
    ("上海", "上海科学技术出版社"),
    ("北京", "人民邮电出版社"),
    ("北京", "社会科学文献出版社"),
    ("北京", "国家图书馆出版社"),
    ("上海", "上海书店出版社"),
]
JA_PUBLISHERS = [
    ("東京", "岩波書店"),
    ("東京", "講談社"),
    ("東京", "新潮社"),
    ("東京", "中央公論新社"),
    ("東京", "筑摩書房"),
    ("東京", "KADOKAWA"),
    ("東京", "小学館"),
    ("東京", "集英社"),
    ("東京", "文藝春秋"),
    ("東京", "有斐閣"),
    ("東京", "東京大学出版会"),
    ("東京", "吉川弘文館"),
    ("東京", "平凡社"),
    ("東京", "朝日新聞出版"),
    ("東京", "山川出版社"),
    ("東京", "勁草書房"),
    ("名古屋", "名古屋大学出版会"),
    ("京都", "京都大学学術出版会"),
    ("京都", "ミネルヴァ書房"),
    ("京都", "法藏館"),
    ("大阪", "大阪大学出版会"),
    ("東京", "みすず書房"),
    ("東京", "白水社"),
]
EN_PUBLISHERS = [
    ("Cambridge", "Cambridge University Press"),
    ("Oxford", "Oxford University Press"),
    ("London", "Routledge"),
    ("Berlin", "Springer"),
    ("London", "Penguin"),
    ("Cambridge, Mass.", "Harvard University Press"),
    ("Princeton", "Princeton University Press"),
    ("New Haven", "Yale University Press"),
    ("Chicago", "University of Chicago Press"),
    ("Hoboken", "Wiley"),
    ("Cambridge, Mass.", "MIT Press"),
    ("New York", "Columbia University Press"),
    ("Stanford", "Stanford University Press"),
    ("Basingstoke", "Palgrave Macmillan"),
    ("Leiden", "Brill"),
    ("Amsterdam", "Elsevier"),
    ("Sebastopol", "O'Reilly"),
    ("Berkeley", "University of California Press"),
    ("Honolulu", "University of Hawaii Press"),
    ("Hong Kong", "Hong Kong University Press"),
    ("Singapore", "World Scientific"),
]

ZH_SUBJECTS = _words("""
中国历史 经济发展 城市规划 环境保护 计算机网络 软件工程 高等教育 中国文学 长篇小说 短篇小说
日本文学 英语 汉语 法律 哲学 伦理学 心理学 社会学 管理学 市场营销 金融 会计 统计学 数学
物理学 化学 生物学 医学 中医学 药学 农业经济 建筑设计 交通运输 旅游业 艺术史 音乐 美术
书法 摄影 电影 戏剧 宗教 佛教 道教 儒家 考古 地理 人口 民族问题 国际关系 外交史 企业管理
人工智能 数据库 程序设计 互联网 电子商务 物流管理 财政 税收 银行 证券 保险 劳动就业 社会保障
城市化 乡村振兴 区域经济 产业结构 对外贸易 文化产业 出版业 图书馆学 档案学 新闻学 传播学
古典诗歌 散文集 文学评论 语言学 翻译 教育改革 课程 教学法 儿童文学 科普读物 古籍整理 方志
""")
ZH_SUBDIVISIONS_X = ["研究", "教材", "文集", "历史", "概况", "手册", "词典", "问题", "案例"]
ZH_SUBDIVISIONS_Y = ["中国", "日本", "美国", "上海", "北京", "欧洲", "亚洲", "江南", "世界"]
ZH_SUBDIVISIONS_Z = ["清代", "明代", "宋代", "唐代", "现代", "近代", "20世纪", "1949-", "古代"]
EN_SUBJECTS = _words("""
China History Economic-development Urban-planning Environmental-protection Computer-networks
Software-engineering Higher-education Chinese-literature Japanese-literature English-language
Law Philosophy Ethics Psychology Sociology Management Marketing Finance Accounting Statistics
Mathematics Physics Chemistry Biology Medicine Architecture Transportation Tourism Art Music
Religion Buddhism Archaeology Geography Population International-relations Artificial-intelligence
""")
EN_SUBDIVISIONS = [
    "History",
    "Study and teaching",
    "Social aspects",
    "Economic aspects",
    "Congresses",
]

# CLC (中图法) classes; half of them get a random decimal extension.
CLC_CLASSES = _words("""
A81 B2 B22 B23 B24 B26 B31 B5 B82 B84 B91 B94 B95 C91 C92 D092 D61 D63 D67 D73 D81 D82 D90
D92 D923 D925 E29 F12 F120 F121 F123 F124 F127 F129 F202 F203 F27 F272 F299 F30 F32 F40 F42
F49 F50 F59 F71 F72 F74 F75 F81 F82 F83 F830 F832 F84 G0 G12 G20 G21 G23 G25 G27 G40 G42 G52
G61 G62 G63 G64 G8 H0 H1 H102 H31 H319 H36 I0 I1 I106 I109 I206 I207 I209 I21 I22 I222 I226
I24 I242 I246 I247 I25 I26 I266 I287 I3 I313 I33 I35 I37 I5 I561 I7 I712 J0 J2 J21 J22 J29 J4
J6 J9 K0 K09 K1 K20 K22 K23 K24 K25 K26 K27 K29 K3 K31 K313 K5 K7 K89 K9 K92 N0 N49 O1 O13
O21 O4 O6 P1 P2 P5 P7 Q1 Q5 Q7 Q94 R1 R2 R24 R28 R4 R5 R7 S1 S3 S5 S6 S8 TB1 TG TH TM TN TN91
TP1 TP18 TP301 TP311 TP312 TP316 TP39 TP393 TQ TS2 TU2 TU98 U2 U4 U6 V2 X1 X3 X5 Z22 Z88
""")

LOCATIONS_ZH = ["中文书库", "中文书库", "综合阅览室-1楼", "参考工具书阅览室"]
LOCATIONS_JA = ["日文书库", "日文书库", "外文书库", "综合阅览室-1楼"]
LOCATIONS_EN = ["外文书库", "外文书库", "外国文学书库", "综合阅览室-1楼"]
ITEM_TYPES = ["普通外借资料"] * 6 + ["参考外借资料"] * 3 + ["阅览资料"]
STATUSES = ["归还"] * 88 + ["借出"] * 10 + ["在编"] * 2
AGENCIES = ["SHL", "SHL", "SHL", "NLC", "CALIS"]
SERIES_ZH = [
    "汉译世界学术名著丛书",
    "中华学术丛书",
    "当代中国研究丛书",
    "海外中国研究丛书",
    "大学教材系列",
    "新知文库",
    "中国历史研究丛书",
    "现代管理丛书",
    "经济学前沿丛书",
]
SERIES_JA = ["岩波新書", "講談社現代新書", "中公新書", "ちくま新書", "岩波文庫", "講談社学術文庫"]
SERIES_EN = [
    "Cambridge Studies in Chinese History",
    "Routledge Studies in Asian Economics",
    "Harvard East Asian Monographs",
    "Lecture Notes in Computer Science",
    "Oxford World's Classics",
    "Studies of the Weatherhead East Asian Institute",
]

FT = b"\x1e"
RT = b"\x1d"


def _skewed(rng: random.Random, words: list[str]) -> str:
    """A word, drawn so that words near the front of the list are much more common."""
    return words[int(len(words) * rng.random() ** 2.2)]


def isbn13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def isbn10(body9: str) -> str:
    total = sum((10 - i) * int(d) for i, d in enumerate(body9))
    check = (11 - total % 11) % 11
    return body9 + ("X" if check == 10 else str(check))


class Generator:
    def __init__(self, seed: int, encoding: str) -> None:
        self.rng = random.Random(seed)
        self.encoding = encoding
        self.charset = "50  " if encoding == "utf-8" else "0120"
        self.copy_number = 0
        self.barcode_offset = (seed * 7_919_357) % 10**10

    # --- pieces --------------------------------------------------------------------------

    def isbn(self, number: int, group: str) -> str:
        rng = self.rng
        # A bijection of the record number onto 8 digits: unique ISBNs within a file.
        body = f"{(number * 7_654_321 + 1_234_567) % 10**8:08d}"
        split = rng.randint(2, 6)
        if rng.random() < 0.3 and group in ("7", "4", "0"):
            full = isbn10(group + body)
            parts = [full[:1], full[1 : 1 + split], full[1 + split : 9], full[9]]
        else:
            full = isbn13("978" + group + body)
            parts = [full[:3], full[3:4], full[4 : 4 + split], full[4 + split : 12], full[12]]
        return "-".join(parts) if rng.random() < 0.8 else "".join(parts)

    def zh_title(self) -> str:
        rng = self.rng
        words = [_skewed(rng, ZH_WORDS) for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.35:
            cut = rng.randint(1, len(words) - 1)
            words.insert(cut, rng.choice(ZH_CONNECTORS))
        if rng.random() < 0.4:
            words.append(rng.choice(ZH_TAILS))
        return "".join(words)

    def ja_title(self) -> str:
        rng = self.rng
        first = _skewed(rng, JA_KANJI) if rng.random() < 0.75 else rng.choice(JA_KANA)
        second = _skewed(rng, JA_KANJI) if rng.random() < 0.6 else rng.choice(JA_KANA)
        title = first + rng.choice(JA_PARTICLES) + second
        if rng.random() < 0.5:
            title += rng.choice(JA_TAILS)
        return title

    def en_title(self) -> str:
        rng = self.rng
        pattern = rng.choice(EN_PATTERNS)
        words = {k: _skewed(rng, EN_WORDS) for k in "ABC"}
        title = pattern.format(
            **{k: v.capitalize() if v.islower() else v for k, v in words.items()}
        )
        return title

    def zh_name(self) -> str:
        rng = self.rng
        return rng.choice(ZH_SURNAMES) + "".join(
            rng.choice(ZH_GIVEN) for _ in range(rng.choice((1, 2, 2)))
        )

    def ja_name(self) -> str:
        return self.rng.choice(JA_SURNAMES) + self.rng.choice(JA_GIVEN)

    def en_name(self) -> str:
        rng = self.rng
        first = rng.choice(EN_FIRST)
        if rng.random() < 0.3:
            first += f" {rng.choice('ABCDEFGHJKLMNPRSTW')}."
        return f"{rng.choice(EN_LAST)}, {first}"

    def clc(self) -> str:
        rng = self.rng
        base = rng.choice(CLC_CLASSES)
        if rng.random() < 0.5:
            base += "." + str(rng.randint(1, 99))
        return base

    def summary(self, lang: str, title: str) -> str:
        rng = self.rng
        if lang == "chi":
            topics = "、".join(_skewed(rng, ZH_WORDS) for _ in range(rng.randint(2, 4)))
            return (
                f"本书{rng.choice(['系统介绍了', '深入探讨了', '全面论述了', '分析了'])}{topics}等问题，"
                f"{rng.choice(['对', '就'])}{_skewed(rng, ZH_WORDS)}{_skewed(rng, ZH_WORDS)}"
                f"提出了{rng.choice(['新的见解', '系统的框架', '若干建议', '独到的看法'])}。"
                f"{rng.choice(['', '适合相关专业师生阅读。', '可供研究人员参考。'])}"
            )
        if lang == "jpn":
            return (
                f"本書は{_skewed(rng, JA_KANJI)}と{_skewed(rng, JA_KANJI)}の関係を"
                f"{rng.choice(['多角的に論じる', '平易に解説する', '歴史的に検討する'])}。"
            )
        return (
            f"This book {rng.choice(['examines', 'explores', 'surveys', 'reconsiders'])} "
            f"{_skewed(rng, EN_WORDS)} and {_skewed(rng, EN_WORDS)} in "
            f"{rng.choice(['modern', 'early modern', 'contemporary', 'imperial'])} "
            f"{rng.choice(['China', 'Japan', 'East Asia', 'the world'])}, drawing on "
            f"{_skewed(rng, EN_WORDS)} {rng.choice(['sources', 'archives', 'data', 'case studies'])}."
        )

    # --- one record ------------------------------------------------------------------------

    def record(self, number: int) -> list[tuple[str, str]]:
        """(tag, field content without the terminator) for record `number` (1-based)."""
        rng = self.rng
        roll = rng.random()
        lang = "chi" if roll < 0.6 else ("jpn" if roll < 0.75 else "eng")
        year = 1950 + int(75 * rng.random() ** 0.6)  # more recent books are more common
        entered = f"{rng.randint(2005, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        fields: list[tuple[str, str]] = [
            ("001", f"GEN{number:010d}"),
            (
                "005",
                f"{entered}{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}"
                f"{rng.randint(0, 59):02d}.0",
            ),
        ]
        group = {"chi": "7", "jpn": "4", "eng": rng.choice("01")}[lang]
        currency = {"chi": "CNY", "jpn": "JPY", "eng": "USD"}[lang]
        if lang == "jpn":
            price = f"JPY{rng.randint(6, 60) * 100}"
        else:
            price = f"{currency}{rng.randint(12, 298)}.{rng.choice(('00', '00', '50', '80'))}"
        fields.append(("010", f"  \x1fa{self.isbn(number, group)}\x1fd{price}"))
        script = {"chi": "ea", "jpn": "da", "eng": "ba"}[lang]
        audience = rng.choice(("em ", "em ", "km ", "am "))
        coded = f"{entered}d{year}    {audience}y0chiy{self.charset}    {script}"
        assert len(coded) == 36, coded
        fields.append(("100", f"  \x1fa{coded}"))
        fields.append(("101", f"0 \x1fa{lang}"))
        country = {"chi": "CN", "jpn": "JP", "eng": rng.choice(("US", "GB", "US", "NL", "DE"))}
        fields.append(("102", f"  \x1fa{country[lang]}"))

        if lang == "chi":
            title = self.zh_title()
            other = self.zh_title() if rng.random() < 0.25 else None
            authors = [self.zh_name() for _ in range(rng.choice((1, 1, 1, 2, 3)))]
            roles = [rng.choice(ZH_ROLES) for _ in authors]
            place, publisher = rng.choice(ZH_PUBLISHERS)
            pages = f"{rng.randint(48, 980)}页"
            size = f"{rng.choice((19, 21, 23, 24, 26))}cm"
            responsibility = "，".join(authors) + roles[0]
        elif lang == "jpn":
            title = self.ja_title()
            other = self.ja_title() if rng.random() < 0.2 else None
            authors = [self.ja_name() for _ in range(rng.choice((1, 1, 2)))]
            roles = [rng.choice(JA_ROLES) for _ in authors]
            place, publisher = rng.choice(JA_PUBLISHERS)
            pages = f"{rng.randint(48, 640)}p"
            size = f"{rng.choice((15, 18, 19, 21, 22))}cm"
            responsibility = "、".join(authors) + roles[0]
        else:
            title = self.en_title()
            other = self.en_title() if rng.random() < 0.2 else None
            authors = [self.en_name() for _ in range(rng.choice((1, 1, 2, 3)))]
            roles = [rng.choice(EN_ROLES) for _ in authors]
            place, publisher = rng.choice(EN_PUBLISHERS)
            pages = f"{rng.choice(('', 'xii, ', 'xxv, ', 'ix, '))}{rng.randint(96, 820)} p."
            size = f"{rng.choice((21, 23, 24, 26))} cm"
            names = [" ".join(reversed(a.split(", "))) for a in authors]
            responsibility = ("edited by " if roles[0] == "editor" else "") + " and ".join(names)

        t200 = f"1 \x1fa{title}"
        if other:
            t200 += f"\x1fe{other}"
        t200 += f"\x1ff{responsibility}"
        fields.append(("200", t200))
        if rng.random() < 0.12:
            edition = {"chi": "第{}版", "jpn": "第{}版", "eng": "{}nd ed."}[lang]
            fields.append(("205", f"  \x1fa{edition.format(rng.randint(2, 5))}"))
        fields.append(("210", f"  \x1fa{place}\x1fc{publisher}\x1fd{year}"))
        t215 = f"  \x1fa{pages}"
        if rng.random() < 0.3:
            t215 += "\x1fc" + {"chi": "图", "jpn": "図版", "eng": "ill."}[lang]
        fields.append(("215", t215 + f"\x1fd{size}"))
        if rng.random() < 0.3:
            series = {"chi": SERIES_ZH, "jpn": SERIES_JA, "eng": SERIES_EN}[lang]
            fields.append(("225", f"2 \x1fa{rng.choice(series)}"))
        if rng.random() < 0.4:
            fields.append(("330", f"  \x1fa{self.summary(lang, title)}"))

        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            if lang == "eng" and rng.random() < 0.5:
                heading = _skewed(rng, EN_SUBJECTS).replace("-", " ")
                t606 = f"0 \x1fa{heading}"
                if rng.random() < 0.5:
                    t606 += f"\x1fx{rng.choice(EN_SUBDIVISIONS)}"
            else:
                t606 = f"0 \x1fa{_skewed(rng, ZH_SUBJECTS)}"
                if rng.random() < 0.6:
                    t606 += f"\x1fx{rng.choice(ZH_SUBDIVISIONS_X)}"
                if rng.random() < 0.3:
                    t606 += f"\x1fy{rng.choice(ZH_SUBDIVISIONS_Y)}"
                if rng.random() < 0.3:
                    t606 += f"\x1fz{rng.choice(ZH_SUBDIVISIONS_Z)}"
            fields.append(("606", t606))

        clc = self.clc()
        fields.append(("690", f"  \x1fa{clc}\x1fv5"))
        for name, role in zip(authors, roles, strict=True):
            tag = "702" if role in ("译", "校注") else "701"
            fields.append((tag, f" 0\x1fa{name}\x1f4{role}"))
        fields.append(("801", f" 0\x1faCN\x1fb{rng.choice(AGENCIES)}\x1fc{entered}"))

        cutter = (
            f"{rng.choice('ABCDEFGHJKLMNPQRSTWXYZ')}{rng.randint(1, 999)}"
            if rng.random() < 0.5
            else str(rng.randint(1, 9999))
        )
        call_number = f"{clc}/{cutter}"
        locations = {"chi": LOCATIONS_ZH, "jpn": LOCATIONS_JA, "eng": LOCATIONS_EN}[lang]
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            self.copy_number += 1
            barcode = f"3100{(self.copy_number * 104_729 + self.barcode_offset) % 10**10:010d}"
            fields.append(
                (
                    "995",
                    f"  \x1fb上海图书馆\x1fe{rng.choice(locations)}\x1fk{call_number}"
                    f"\x1fr{rng.choice(ITEM_TYPES)}\x1fs{rng.choice(STATUSES)}\x1ff{barcode}",
                )
            )
        return fields


def encode(fields: list[tuple[str, str]], encoding: str) -> bytes:
    """ISO 2709: leader (lengths in bytes), 12-byte directory entries, fields, 0x1D."""
    directory = []
    body = []
    position = 0
    for tag, content in fields:
        data = content.encode(encoding) + FT
        directory.append(f"{tag}{len(data):04d}{position:05d}".encode("ascii"))
        body.append(data)
        position += len(data)
    base = 24 + 12 * len(fields) + 1
    total = base + position + 1
    leader = f"{total:05d}nam0 22{base:05d}   450 ".encode("ascii")
    return leader + b"".join(directory) + FT + b"".join(body) + RT


def generate(records: int, encoding: str, seed: int, out: Path) -> tuple[int, float]:
    generator = Generator(seed, encoding)
    started = time.perf_counter()
    written = 0
    with out.open("wb", buffering=1 << 20) as handle:
        pending: list[bytes] = []
        for number in range(1, records + 1):
            pending.append(encode(generator.record(number), encoding))
            if len(pending) >= 1000:
                data = b"".join(pending)
                handle.write(data)
                written += len(data)
                pending = []
        data = b"".join(pending)
        handle.write(data)
        written += len(data)
    return written, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1000, metavar="N")
    parser.add_argument("--encoding", choices=("utf-8", "gb18030"), default="utf-8")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("-o", "--output", required=True, metavar="PATH")
    args = parser.parse_args(argv)
    if args.records < 0:
        parser.error("--records must be 0 or more")
    written, seconds = generate(args.records, args.encoding, args.seed, Path(args.output))
    print(
        f"{args.output}: {args.records} records, {written:,} bytes, {args.encoding},"
        f" seed {args.seed} ({seconds:.1f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
