# The mix of one client's newest orders by SKU, for the client page's script panel (tests).
# Inputs: orders [{sku, amount, placed_on}], history [{date, value}], threshold (text).
total = Decimal(0)
by = {}
for o in orders:
    total += Decimal(str(o["amount"]))
    by[o["sku"]] = by.get(o["sku"], Decimal(0)) + Decimal(str(o["amount"]))
rows = [{"sku": k, "amount": by[k]} for k in sorted(by, key=lambda k: -by[k])]
top = (rows[0]["amount"] / total) if rows and total > 0 else None
flags = []
if top is not None and top > Decimal(threshold):
    flags.append({"message": {"zh-CN": "单一货号占比过高", "en": "one SKU dominates"}})
result = {"total": total, "top_share": top, "by_sku": rows, "days": len(history), "missing": None, "flags": flags}
