/**
 * The schema flattened into its leaf keys (path, type, default, description), derived from the
 * zod schema's JSON Schema. Both the env-override mapping and the generated docs read this, so
 * neither can drift from the schema.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';

export interface ConfigField {
  /** Dotted key path, e.g. `cloud.backoff.baseMs`. */
  path: string;
  /** `LENSCAP_CLOUD_BACKOFF_BASE_MS`; empty for `version` (the file's format is not overridable). */
  env: string;
  /** Human type: `integer`, `boolean`, `string`, `"a" | "b"`, `string[]` … */
  type: string;
  kind: 'string' | 'number' | 'boolean' | 'array' | 'enum';
  default: unknown;
  description: string;
  /** Section description, for grouping in docs. */
  section: string;
}

interface JsonNode {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonNode>;
  enum?: unknown[];
  anyOf?: JsonNode[];
  const?: unknown;
  items?: JsonNode;
}

function envName(path: string[]): string {
  return 'LENSCAP_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function describeType(node: JsonNode): { type: string; kind: ConfigField['kind'] } {
  if (node.const !== undefined)
    return { type: JSON.stringify(node.const), kind: typeof node.const === 'number' ? 'number' : 'enum' };
  if (node.enum) return { type: node.enum.map((v) => JSON.stringify(v)).join(' \\| '), kind: 'enum' };
  if (node.anyOf && node.anyOf.some((n) => n.const === undefined)) {
    // A value or a list of them (cloud.url): from the environment it is read as a list.
    const members = node.anyOf.map(describeType);
    return {
      type: members.map((m) => m.type).join(' \\| '),
      kind: members.some((m) => m.kind === 'array') ? 'array' : members[0]!.kind,
    };
  }
  if (node.anyOf) {
    const consts = node.anyOf.map((n) => n.const);
    return {
      type: consts.map((v) => JSON.stringify(v)).join(' \\| '),
      kind: typeof consts[0] === 'number' ? 'number' : 'enum',
    };
  }
  if (node.type === 'array') return { type: `${describeType(node.items ?? {}).type}[]`, kind: 'array' };
  if (node.type === 'integer' || node.type === 'number') return { type: node.type, kind: 'number' };
  if (node.type === 'boolean') return { type: 'boolean', kind: 'boolean' };
  return { type: 'string', kind: 'string' };
}

function walk(node: JsonNode, path: string[], section: string, out: ConfigField[]): void {
  if (node.type === 'object' && node.properties) {
    for (const [key, child] of Object.entries(node.properties)) {
      walk(child, [...path, key], path.length === 0 ? (child.description ?? key) : section, out);
    }
    return;
  }
  const { type, kind } = describeType(node);
  out.push({
    path: path.join('.'),
    env: path.join('.') === 'version' ? '' : envName(path),
    type,
    kind,
    default: node.default,
    description: node.description ?? '',
    section,
  });
}

let cached: ConfigField[] | undefined;

export function configFields(): ConfigField[] {
  if (!cached) {
    const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonNode;
    cached = [];
    walk(json, [], '', cached);
  }
  return cached;
}
