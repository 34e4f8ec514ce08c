import t from "tap";
import { jsonEqual } from "../../common/json-equal.ts";

t.test("objects read back from the API server equal the ones we built when only key order and undefined keys differ", async (t) => {
  const equal: [string, unknown, unknown][] = [
    ["same primitives", 5, 5],
    ["key order", { a: 1, b: { c: [1, 2], d: "x" } }, { b: { d: "x", c: [1, 2] }, a: 1 }],
    ["an undefined key is a missing one", { a: 1, b: undefined }, { a: 1 }],
    ["on either side", { a: 1 }, { a: 1, b: undefined }],
    ["nested", [{ a: undefined, b: [] }], [{ b: [] }]],
    ["the same instant", new Date("2026-01-01T00:00:00Z"), new Date(Date.parse("2026-01-01T00:00:00Z"))],
    ["null", null, null],
  ];
  for (const [what, a, b] of equal) t.ok(jsonEqual(a, b), what);
});

t.test("any difference in a value, a defined key, an array's length or order, or the kind of value is a change", async (t) => {
  const different: [string, unknown, unknown][] = [
    ["a value", { a: 1 }, { a: 2 }],
    ["a nested value", { a: { b: [1, { c: "x" }] } }, { a: { b: [1, { c: "y" }] } }],
    ["an extra key", { a: 1 }, { a: 1, b: 2 }],
    ["a key for another", { a: 1 }, { b: 1 }],
    ["a null key is no missing one", { a: null }, {}],
    ["array order", [1, 2], [2, 1]],
    ["a longer array", [1, 2], [1, 2, 3]],
    ["a shorter array", [1, 2, 3], [1, 2]],
    ["an array and an object with its indexes", [1], { 0: 1 }],
    ["an object and an array", { 0: 1 }, [1]],
    ["an empty array and an empty object", [], {}],
    ["null and an object", null, {}],
    ["an object and null", {}, null],
    ["a number and its text", 1, "1"],
    ["another instant", new Date("2026-01-01T00:00:00Z"), new Date("2026-01-01T00:00:01Z")],
    ["undefined and null", undefined, null],
    ["an instant and its text", new Date("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00.000Z"],
    ["a text and an instant", "2026-01-01T00:00:00.000Z", new Date("2026-01-01T00:00:00Z")],
    ["a text and a list holding it", "x", ["x"]],
  ];
  for (const [what, a, b] of different) t.notOk(jsonEqual(a, b), what);
});
