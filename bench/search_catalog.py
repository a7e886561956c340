"""The generated catalog of bench/search.py: the demo catalog (social_mall/demo.py, 20
products) extended to N products, deterministic for a seed.

How it is generated, and its skew:
- 10 categories, each with its product nouns (连衣裙, 运动鞋, 脐橙, 充电宝 …; 62 nouns).
- Category sizes follow a Zipf law (s = 1.1) over a fixed order (女装 biggest, 美妆
  smallest), and so do the nouns inside a category (the first noun of 女装, 连衣裙, gets
  the most products): a few heads, a long tail, as in a real shop's catalog.
- A title is [brand] [modifier…] noun [suffix], e.g. 「优衣坊 法式碎花 连衣裙 女 夏季新款」
  without the spaces; the subtitle is a selling line, and 1 product in 12 names another
  noun in its subtitle (「可搭配半身裙」), as real listings do (a trap for substring search).
- SKUs: clothing has colours × sizes (S–XL; shoes 36–44), food has weights, goods have
  colours or packs; each product draws 1–3 colours from a skewed palette and 2–4 sizes.
Every product keeps its structured truth (noun, colours, sizes): the labels of the query
set are computed from it, never from the texts the search engines see.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from social_mall.demo import CATALOG as DEMO

KIND_CLOTHES, KIND_SHOES, KIND_FOOD, KIND_GOODS = "clothes", "shoes", "food", "goods"

# category → (kind, nouns, modifiers)
CATEGORIES: dict[str, tuple[str, list[str], list[str]]] = {
    "女装": (KIND_CLOTHES, ["连衣裙", "半身裙", "T恤", "衬衫", "卫衣", "针织衫", "牛仔裤", "阔腿裤", "风衣", "羽绒服"],
           ["法式", "碎花", "收腰", "宽松", "显瘦", "复古", "通勤", "韩版", "纯棉", "雪纺", "高腰", "百搭"]),
    "男装": (KIND_CLOTHES, ["夹克", "休闲裤", "POLO衫", "西装", "短裤", "冲锋衣"],
           ["商务", "休闲", "修身", "纯棉", "加厚", "运动", "青年", "工装"]),
    "鞋靴": (KIND_SHOES, ["运动鞋", "帆布鞋", "马丁靴", "凉鞋", "拖鞋", "板鞋"],
           ["透气", "轻便", "防滑", "厚底", "百搭", "学生", "网面", "真皮"]),
    "水果生鲜": (KIND_FOOD, ["脐橙", "草莓", "芒果", "葡萄", "苹果", "车厘子", "猕猴桃", "番茄", "土豆"],
             ["新鲜", "当季", "现摘", "产地直发", "有机", "精选", "大果", "礼盒"]),
    "休闲零食": (KIND_FOOD, ["坚果", "牛肉干", "薯片", "饼干", "巧克力", "海苔", "瓜子"],
             ["原味", "麻辣", "低糖", "儿童", "网红", "整箱", "独立包装", "办公室"]),
    "日用百货": (KIND_GOODS, ["抽纸", "洗衣液", "保温杯", "毛巾", "牙刷", "垃圾袋", "拖把"],
             ["家用", "加厚", "大容量", "不锈钢", "纯棉", "整箱", "便携", "抗菌"]),
    "茶饮冲调": (KIND_FOOD, ["龙井", "普洱", "咖啡", "燕麦片", "乌龙茶", "奶粉"],
             ["明前", "特级", "速溶", "即食", "冷泡", "无糖", "浓香", "礼盒"]),
    "数码配件": (KIND_GOODS, ["数据线", "充电宝", "耳机", "手机壳", "鼠标"],
             ["快充", "无线", "蓝牙", "大容量", "磁吸", "防摔", "便携", "降噪"]),
    "母婴": (KIND_GOODS, ["纸尿裤", "奶瓶", "湿巾", "婴儿车"],
           ["新生儿", "超薄", "宽口径", "轻便", "加厚", "便携"]),
    "美妆": (KIND_GOODS, ["口红", "面膜", "防晒霜", "洗面奶"],
           ["滋润", "补水", "保湿", "控油", "温和", "持久"]),
}
BRANDS = ["优衣坊", "森马家", "南极猫", "良品屋", "三只狸", "百草园", "小米粒", "云朵朵", "北极绒", "安踏步", "", "", "", ""]
SUFFIX = {KIND_CLOTHES: ["女", "男女同款", "2024新款", "春夏", "秋冬", ""], KIND_SHOES: ["男", "女", "新款", ""],
          KIND_FOOD: ["500g", "家庭装", "年货", ""], KIND_GOODS: ["家庭装", "新款", "套装", ""]}
COLOURS = ["黑色", "白色", "红色", "蓝色", "灰色", "粉色", "绿色", "卡其色", "米色", "紫色"]
SIZES = {KIND_CLOTHES: ["S", "M", "L", "XL"], KIND_SHOES: [str(n) for n in range(36, 45)]}
WEIGHTS = ["250g", "500g", "1kg", "2斤装", "5斤装", "10斤装", "礼盒装"]
PACKS = ["单只装", "2件装", "3件装", "10包", "24包"]
SELLING = ["限时特惠", "包邮", "店长推荐", "回购率高", "好评如潮", "品质保证", "顺丰发货"]


@dataclass(frozen=True)
class GenProduct:
    category: str
    noun: str
    title: str
    subtitle: str
    skus: tuple[tuple[str, str, str], ...]   # (spec text, colour, size)
    sort: int

    @property
    def colours(self) -> frozenset[str]:
        return frozenset(c for _, c, _ in self.skus if c)

    @property
    def sizes(self) -> frozenset[str]:
        return frozenset(s for _, _, s in self.skus if s)


def _zipf(n: int, s: float = 1.1) -> list[float]:
    w = [1 / (k + 1) ** s for k in range(n)]
    total = sum(w)
    return [x / total for x in w]


def _demo_products() -> list[GenProduct]:
    noun_of = {"赣南脐橙": "脐橙", "丹东草莓": "草莓", "海南贵妃芒": "芒果", "阳光玫瑰葡萄": "葡萄", "新疆阿克苏苹果": "苹果",
               "每日坚果": "坚果", "手撕牛肉干": "牛肉干", "芒果干": "芒果干", "海苔脆": "海苔", "黑巧克力": "巧克力",
               "竹纤维抽纸": "抽纸", "洗衣凝珠": "洗衣凝珠", "不锈钢保温杯": "保温杯", "纯棉毛巾": "毛巾", "电动牙刷": "牙刷",
               "西湖龙井": "龙井", "云南普洱": "普洱", "挂耳咖啡": "咖啡", "燕麦片": "燕麦片", "桂花乌龙": "乌龙茶"}
    out = []
    for cat, items in DEMO.items():
        for sort, (title, sub, skus) in enumerate(items):
            specs = tuple((spec, next((c for c in COLOURS if c[:1] in spec and c in spec), ""), "") for spec, _, _ in skus)
            out.append(GenProduct(cat, noun_of[title], title, sub, specs, sort))
    return out


def generate(n: int = 2000, seed: int = 22) -> list[GenProduct]:
    rng = random.Random(seed)
    products = _demo_products()
    names = list(CATEGORIES)
    cat_w = _zipf(len(names))
    all_nouns = [noun for _, nouns, _ in CATEGORIES.values() for noun in nouns]
    while len(products) < n:
        cat = rng.choices(names, cat_w)[0]
        kind, nouns, mods = CATEGORIES[cat]
        noun = rng.choices(nouns, _zipf(len(nouns)))[0]
        brand = rng.choice(BRANDS)
        picked = rng.sample(mods, rng.randint(1, 2))
        title = f"{brand}{''.join(picked)}{noun}{rng.choice(SUFFIX[kind])}"[:40]
        sub = rng.choice(SELLING)
        if rng.random() < 1 / 12:
            other = rng.choice([x for x in all_nouns if x != noun])
            sub = f"可搭配{other} {sub}"
        if kind in (KIND_CLOTHES, KIND_SHOES):
            colours = rng.sample(COLOURS[:6], rng.randint(1, 3)) if rng.random() < 0.8 else rng.sample(COLOURS, 2)
            sizes = SIZES[kind]
            lo = rng.randint(0, max(0, len(sizes) - 2))
            chosen = sizes[lo:lo + rng.randint(2, 4)]
            skus = tuple((f"{c} / {s}", c, s) for c in colours for s in chosen)
        elif kind == KIND_FOOD:
            skus = tuple((w, "", "") for w in rng.sample(WEIGHTS, rng.randint(1, 2)))
        else:
            if rng.random() < 0.5:
                skus = tuple((c, c, "") for c in rng.sample(COLOURS, rng.randint(1, 3)))
            else:
                skus = tuple((p, "", "") for p in rng.sample(PACKS, rng.randint(1, 2)))
        products.append(GenProduct(cat, noun, title, sub, skus, rng.randint(0, 100)))
    return products[:n]
