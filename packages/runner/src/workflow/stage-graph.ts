import type { StageDefinition, WorkflowDefinition } from "@flowmeter/shared";

export interface PlannedStage {
  stage: StageDefinition;
  /** Position in the workflow file; breaks ties in start order. */
  index: number;
  /** Longest dependency path from a root stage (a stage without dependencies is level 0). */
  level: number;
  /** `g<level>`: stages of one group can run in parallel. */
  groupId: string;
  dependsOn: readonly string[];
}

/** Levels and groups of a validated (acyclic) workflow, in start order: by level, then file order. */
export function planStages(workflow: WorkflowDefinition): PlannedStage[] {
  const byName = new Map(workflow.stages.map((stage) => [stage.name, stage]));
  const levels = new Map<string, number>();
  const levelOf = (name: string): number => {
    const known = levels.get(name);
    if (known !== undefined) return known;
    const dependencies = byName.get(name)?.depends_on ?? [];
    const level = dependencies.length === 0 ? 0 : 1 + Math.max(...dependencies.map(levelOf));
    levels.set(name, level);
    return level;
  };
  return workflow.stages
    .map((stage, index) => {
      const level = levelOf(stage.name);
      return { stage, index, level, groupId: `g${level}`, dependsOn: stage.depends_on ?? [] };
    })
    .sort((a, b) => a.level - b.level || a.index - b.index);
}
