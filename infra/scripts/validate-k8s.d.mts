/** Types of validate-k8s.mjs, for the TypeScript tests that import it. */
export interface ManifestObject {
  file: string;
  // biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document of any kind
  doc: any;
}
export function parseYamlDocuments(text: string): Promise<unknown[]>;
export function quantity(q: string | number): number;
export function validateObjects(objects: ManifestObject[]): string[];
export function validateDirectory(dir: string): Promise<{ objects: ManifestObject[]; errors: string[] }>;
export function schemaErrors(doc: unknown): string[];
