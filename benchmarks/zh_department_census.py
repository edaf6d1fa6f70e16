"""Which Shopify verticals zh-retail's departments hold, counted from their titles.

The first hand mapping of zh-retail's 29 departments to Shopify verticals
(benchmarks/shopify_verticals.json, "zh-retail-first") was written from the department names
and ~10 titles each. This census counts, over every training row outside the zero-shot
benchmark's two 400-row parts (rows 800.. of its fixed shuffle), the titles that name a kind of
product Shopify files only under another vertical. A vertical joins a department's accepted
set ("zh-retail") when at least 5% of the department's titles are such products. No model
output is used: only titles, department labels and keyword lists.

Usage: .venv/bin/python benchmarks/zh_department_census.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zeroshot_quality import DATA  # noqa: E402

THRESHOLD = 0.05
# department -> {vertical: keywords naming products Shopify files under that vertical}
CENSUS = {
    "家居": {
        # clothing and footwear: Apparel & Accessories > Clothing / Shoes
        "Apparel & Accessories": (
            r"袜|内裤|内衣|盒裤|睡衣|秋衣|秋裤|保暖裤|打底裤|拖鞋|防晒衣|T恤|上衣|衬衫|文胸"
        ),
    },
    "母婴": {
        # baby toiletries: Shopify has no baby toiletries under Baby & Toddler; they are
        # Health & Beauty > Personal Care (shampoo, toothpaste, lotion, powder)
        "Health & Beauty": r"牙膏|牙刷|洗发|沐浴|润肤|霜|乳液|爽身粉|护臀|花露水|身体乳|洗手液",
        "Food, Beverages & Tobacco": r"成人奶粉|女士.*奶粉|孕.*奶粉|妈妈.*奶粉|中老年",
    },
    "玩具": {
        "Sporting Goods": r"球拍|篮球|足球|排球|羽毛球|乒乓|护踝|护肘|护腕|护膝|跳绳|泳|滑板|轮滑",
        "Office Supplies": r"铅笔|笔记本|记事本|直尺|卷尺|画纸|文具|橡皮|笔袋|水彩笔|蜡笔",
        "Electronics": r"电池",
    },
    "清洁": {
        # diapers: Baby & Toddler > Diapering
        "Baby & Toddler": r"纸尿裤|尿不湿|拉拉裤|成长裤",
    },
}


def census(frame: pd.DataFrame) -> list[dict]:
    rows = []
    for department, verticals in CENSUS.items():
        titles = frame.title[frame.category == department]
        for vertical, pattern in verticals.items():
            hit = titles.str.contains(pattern, regex=True)
            rows.append(
                {
                    "department": department,
                    "vertical": vertical,
                    "titles": int(len(titles)),
                    "matching": int(hit.sum()),
                    "share": round(float(hit.mean()), 3),
                    "added": bool(hit.mean() >= THRESHOLD),
                    "examples": titles[hit].head(3).tolist(),
                }
            )
    return rows


def main() -> int:
    path = DATA / "zh-retail" / "train.csv"
    if not path.exists():
        print(f"skipped: {path} not found")
        return 0
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame.sample(frac=1.0, random_state=0).iloc[800:]  # as zeroshot_quality shuffles
    print("| department | vertical | titles | matching | share | added |")
    print("|---|---|---|---|---|---|")
    for r in census(frame):
        print(
            f"| {r['department']} | {r['vertical']} | {r['titles']} | {r['matching']} | "
            f"{r['share']:.3f} | {'yes' if r['added'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
