import t from "tap";
import { compareText } from "../../common/order.ts";

t.test("compareText is code-unit order, whatever the locale: -1, 1 or 0", async (t) => {
  t.equal(compareText("a", "b"), -1);
  t.equal(compareText("b", "a"), 1);
  t.equal(compareText("a", "a"), 0);
  t.equal(compareText("B", "a"), -1, "upper case before lower case, unlike a locale's collation");
  t.equal(compareText("z", "é"), -1, "é (U+00E9) after z");
  t.equal(compareText("pod-10", "pod-9"), -1, "digits are text, not numbers");
  t.same(["b", "a", "C", "c"].sort(compareText), ["C", "a", "b", "c"]);
});
