/**
 * Payload validation against the JSON Schemas shared with the Python side.
 *
 * The schemas (allframe_lab/notebook/schemas/*.v1.json, copied at build time into
 * schemas.generated.ts) use a small subset of JSON Schema 2020-12: type, const, enum,
 * required, properties, additionalProperties: false, items and minimum. This module checks
 * exactly that subset, collects every violation (not just the first) and reports the
 * version first, so that a payload from a newer allframe-lab says "upgrade", not
 * "field x is wrong".
 */

/** The subset of JSON Schema the payload schemas use. */
export interface JSONSchema {
  [key: string]: unknown;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  required?: string[];
  properties?: { [name: string]: JSONSchema };
  additionalProperties?: boolean;
  items?: JSONSchema;
  minimum?: number;
}

/** Outcome of checking a payload: the problems found (empty when valid). */
export interface ICheck {
  ok: boolean;
  /** One line per problem, with a JSON-pointer-like path. */
  problems: string[];
  /** Set when the payload names a schema or version this build does not know. */
  unsupported?: string;
}

const MAX_PROBLEMS = 20;

function typeOf(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'array';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'integer' : 'number';
  }
  return typeof value;
}

function typeMatches(value: unknown, expected: string): boolean {
  const actual = typeOf(value);
  return actual === expected || (expected === 'number' && actual === 'integer');
}

function walk(value: unknown, schema: JSONSchema, at: string, out: string[]): void {
  if (out.length >= MAX_PROBLEMS) {
    return;
  }
  const where = at || '(payload)';
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some(t => typeMatches(value, t))) {
      out.push(`${where}: expected ${types.join(' or ')}, got ${typeOf(value)}`);
      return;
    }
  }
  if ('const' in schema && value !== schema.const) {
    out.push(`${where}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  }
  if (schema.enum && !schema.enum.includes(value)) {
    out.push(
      `${where}: expected one of ${schema.enum.map(v => JSON.stringify(v)).join(', ')}, ` +
        `got ${JSON.stringify(value)}`
    );
  }
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) {
    out.push(`${where}: ${value} is below the minimum ${schema.minimum}`);
  }
  if (typeOf(value) === 'object') {
    const object = value as { [key: string]: unknown };
    for (const name of schema.required ?? []) {
      if (!(name in object)) {
        out.push(`${where}: missing required field "${name}"`);
      }
    }
    const properties = schema.properties ?? {};
    for (const [name, item] of Object.entries(object)) {
      if (name in properties) {
        walk(item, properties[name], `${at}/${name}`, out);
      } else if (schema.additionalProperties === false) {
        out.push(`${where}: unknown field "${name}"`);
      }
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, index) => walk(item, schema.items as JSONSchema, `${at}/${index}`, out));
  }
}

/**
 * Check `payload` against `schema`.
 *
 * The "schema" and "version" fields are checked first: a payload of another schema or of a
 * version this build does not know gets `unsupported` set and no further checks.
 */
export function check(payload: unknown, schema: JSONSchema): ICheck {
  const properties = schema.properties ?? {};
  const expectedName = properties.schema?.const;
  const expectedVersion = properties.version?.const;
  if (typeOf(payload) !== 'object') {
    return { ok: false, problems: [`(payload): expected an object, got ${typeOf(payload)}`] };
  }
  const object = payload as { [key: string]: unknown };
  if (object.schema !== expectedName) {
    return {
      ok: false,
      problems: [],
      unsupported:
        `this output says it is schema ${JSON.stringify(object.schema)}, ` +
        `but its MIME type expects ${JSON.stringify(expectedName)}.`
    };
  }
  if (object.version !== expectedVersion) {
    return {
      ok: false,
      problems: [],
      unsupported:
        `${String(expectedName)} version ${JSON.stringify(object.version)} is not supported ` +
        `by this allframe-lab JupyterLab extension, which renders version ${String(expectedVersion)}. ` +
        'Install the allframe-lab release that produced this output (pip install -U allframe-lab) ' +
        'and reload JupyterLab.'
    };
  }
  const problems: string[] = [];
  walk(payload, schema, '', problems);
  return { ok: problems.length === 0, problems };
}
