/**
 * Canonical JSON, the one text every keeper hashes for the same value: object keys sorted by UTF-16 code
 * units (JavaScript's default string order), recursively; no whitespace; strings and numbers as
 * `JSON.stringify` writes them (which is what RFC 8785, JCS, prescribes for both); object fields whose value
 * is `undefined` are left out, as JSON does. Anything JSON cannot carry faithfully is refused instead of
 * silently changed: non-finite numbers, functions, symbols, `undefined` inside arrays, objects other than
 * plain ones (Date, Map, class instances), and cycles. Bigints are refused too, unless the caller asks for
 * them as decimal strings (evidence objects, whose numbers may exceed 2^53).
 */

export interface CanonicalOptions {
  /** Write bigints as decimal strings instead of refusing them. */
  bigintsAsStrings?: boolean;
}

/** The canonical JSON text of `value` (see the file's notice); throws a TypeError naming the bad path. */
export function canonicalJson(value: unknown, options: CanonicalOptions = {}): string {
  return write(value, "$", new Set(), options.bigintsAsStrings === true);
}

function write(value: unknown, where: string, open: Set<object>, bigints: boolean): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${where} is ${value}, which JSON cannot represent`);
      return JSON.stringify(value);
    case "bigint":
      if (bigints) return JSON.stringify(value.toString());
      throw new TypeError(`canonicalJson: ${where} is a bigint, which JSON cannot represent`);
    case "object":
      break;
    default:
      throw new TypeError(`canonicalJson: ${where} is a ${typeof value}, which JSON cannot represent`);
  }
  const object = value as object;
  if (open.has(object)) throw new TypeError(`canonicalJson: ${where} refers back to an enclosing value (a cycle)`);
  open.add(object);
  try {
    if (Array.isArray(object)) {
      return `[${object
        .map((item, i) => {
          if (item === undefined) throw new TypeError(`canonicalJson: ${where}[${i}] is undefined`);
          return write(item, `${where}[${i}]`, open, bigints);
        })
        .join(",")}]`;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`canonicalJson: ${where} is a ${object.constructor?.name ?? "non-plain object"}, not a plain object`);
    }
    const record = object as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${write(record[key], `${where}.${key}`, open, bigints)}`).join(",")}}`;
  } finally {
    open.delete(object);
  }
}
