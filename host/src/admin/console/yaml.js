// A small YAML writer for exporting a filter entry: block mappings and
// sequences, flow lists of scalars, and strings quoted only when YAML
// would read them as something else. Enough for config blocks; not a
// general YAML library.

const PLAIN = /^[A-Za-z_][A-Za-z0-9_.\-/]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'string') return String(value);
  if (PLAIN.test(value) && !RESERVED.test(value)) return value;
  // Single quotes keep backslashes (regexes) as they are; only ' doubles.
  if (!/[\n\r\t]/.test(value)) return `'${value.replace(/'/g, "''")}'`;
  return JSON.stringify(value);
}

const isScalar = (v) => v === null || typeof v !== 'object';

function lines(value, indent) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${pad}[]`];
    return value.flatMap((item) => {
      if (isScalar(item)) return [`${pad}- ${scalar(item)}`];
      const [first, ...rest] = lines(item, indent + 2);
      return [`${pad}- ${first.trimStart()}`, ...rest];
    });
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return [`${pad}{}`];
  return entries.flatMap(([key, item]) => {
    if (isScalar(item)) return [`${pad}${scalar(key)}: ${scalar(item)}`];
    if (Array.isArray(item) && item.every(isScalar)) {
      return [`${pad}${scalar(key)}: [${item.map(scalar).join(', ')}]`];
    }
    if (!Array.isArray(item) && Object.keys(item).length === 0) return [`${pad}${scalar(key)}: {}`];
    return [`${pad}${scalar(key)}:`, ...lines(item, indent + 2)];
  });
}

/** `value` (JSON-like) as YAML text, starting at `indent` spaces. */
export function toYaml(value, indent = 0) {
  return `${lines(value, indent).join('\n')}\n`;
}
