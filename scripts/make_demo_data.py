"""Rebuild the bundled demo sample from the development data (../shared/data).

Real product titles from two public data sets, with their categories mapped by hand to the
Shopify Standard Product Taxonomy so the demo can be scored, plus a few Chinese titles written
for the demo. The fashion rows' photos are copied next to the CSV (`images/<id>.jpg`, named in
the `image` column; empty for the other rows). Run from the repository root:
python scripts/make_demo_data.py
"""

import csv
import random
import shutil
from pathlib import Path

SHARED = Path("../shared/data")
OUT = Path("src/taxonomist/resources/demo/products.csv")
IMAGES = "images"  # folder next to OUT, as the `image` column names it

PRICERUNNER = {
    "Mobile Phones": "Electronics > Communications > Telephony > Mobile & Smart Phones",
    "TVs": "Electronics > Video > Televisions",
    "CPUs": "Electronics > Electronics Accessories > Computer Components > Computer Processors",
    "Digital Cameras": "Cameras & Optics > Cameras > Digital Cameras",
    "Dishwashers": "Home & Garden > Kitchen & Dining > Kitchen Appliances > Dishwashers",
    "Freezers": "Home & Garden > Kitchen & Dining > Kitchen Appliances > Freezers",
    "Fridge Freezers": "Home & Garden > Kitchen & Dining > Kitchen Appliances > Refrigerators",
    "Fridges": "Home & Garden > Kitchen & Dining > Kitchen Appliances > Refrigerators",
    "Microwaves": "Home & Garden > Kitchen & Dining > Kitchen Appliances > Microwave Ovens",
    "Washing Machines": "Home & Garden > Household Appliances > Laundry Appliances > Washing Machines",
}
FASHION = {
    "Apparel > Topwear > Tshirts": "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts",
    "Apparel > Topwear > Shirts": "Apparel & Accessories > Clothing > Clothing Tops > Shirts",
    "Apparel > Bottomwear > Jeans": "Apparel & Accessories > Clothing > Pants > Jeans",
    "Accessories > Watches > Watches": "Apparel & Accessories > Jewelry > Watches",
    "Accessories > Bags > Handbags": "Apparel & Accessories > Handbags, Wallets & Cases > Handbags",
    "Accessories > Eyewear > Sunglasses": "Apparel & Accessories > Clothing Accessories > Sunglasses",
    "Accessories > Socks > Socks": "Apparel & Accessories > Clothing > Socks",
    "Accessories > Bags > Backpacks": "Luggage & Bags > Backpacks",
}
CHINESE = [
    ("苹果 iPhone 15 Pro Max 256GB 手机", PRICERUNNER["Mobile Phones"]),
    ("华为 Mate 60 Pro 智能手机 12GB+512GB", PRICERUNNER["Mobile Phones"]),
    ("小米电视 65英寸 4K 超高清智能电视", PRICERUNNER["TVs"]),
    ("海尔 对开门冰箱 风冷无霜 家用", PRICERUNNER["Fridges"]),
    ("美的 滚筒洗衣机 10公斤 全自动", PRICERUNNER["Washing Machines"]),
    ("格兰仕 微波炉 家用 20升", PRICERUNNER["Microwaves"]),
    ("男士纯棉短袖T恤 夏季 圆领", FASHION["Apparel > Topwear > Tshirts"]),
    ("女士真皮手提包 大容量 通勤", FASHION["Accessories > Bags > Handbags"]),
    ("雷朋 太阳镜 偏光 男女款", FASHION["Accessories > Eyewear > Sunglasses"]),
    ("卡西欧 手表 男士 防水 石英表", FASHION["Accessories > Watches > Watches"]),
]


def main() -> None:
    rng = random.Random(7)
    rows = []
    photos: list[tuple[Path, Path]] = []  # (source, destination)
    image_dir = OUT.parent / IMAGES
    for name, mapping, per_class in (("pricerunner", PRICERUNNER, 18), ("fashion", FASHION, 12)):
        with open(SHARED / name / "test.csv", encoding="utf-8") as handle:
            by_class: dict[str, list[dict]] = {}
            for row in csv.DictReader(handle):
                if row["category"] in mapping:
                    by_class.setdefault(row["category"], []).append(row)
        for source_cat, items in sorted(by_class.items()):
            for row in rng.sample(items, per_class):
                image = ""
                if row.get("image"):
                    image = f"{IMAGES}/{row['id']}.jpg"
                    photos.append((SHARED / name / row["image"], OUT.parent / image))
                rows.append(
                    (f"{name}-{row['id']}", row["title"], mapping[source_cat], name, image)
                )
    for i, (title, cat) in enumerate(CHINESE, start=1):
        rows.append((f"zh-{i}", title, cat, "written for the demo", ""))
    rng.shuffle(rows)
    if image_dir.exists():
        shutil.rmtree(image_dir)
    image_dir.mkdir(parents=True)
    for source, destination in photos:
        shutil.copyfile(source, destination)
    with open(OUT, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "category", "source", "image"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT} and {len(photos)} photos to {image_dir}")


if __name__ == "__main__":
    main()
