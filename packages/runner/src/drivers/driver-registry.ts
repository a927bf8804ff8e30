import type { Driver } from "./driver.js";
import { nodeDriver } from "./node-driver.js";
import { shellDriver } from "./shell-driver.js";

const BUILT_IN_DRIVERS: readonly Driver[] = [nodeDriver, shellDriver];
export const BUILT_IN_DRIVER_NAMES: readonly string[] = BUILT_IN_DRIVERS.map((driver) => driver.name);

/** Drivers by name. Workflows are validated against `names()`, and metrics pre-create their `driver` labels from it. */
export class DriverRegistry {
  private readonly drivers = new Map<string, Driver>();

  constructor(drivers: readonly Driver[] = BUILT_IN_DRIVERS) {
    for (const driver of drivers) this.register(driver);
  }

  register(driver: Driver): this {
    if (this.drivers.has(driver.name)) throw new Error(`driver "${driver.name}" is already registered`);
    this.drivers.set(driver.name, driver);
    return this;
  }

  get(name: string): Driver {
    const driver = this.drivers.get(name);
    if (driver === undefined) throw new Error(`unknown driver "${name}" (known: ${this.names().join(", ")})`);
    return driver;
  }

  names(): string[] {
    return [...this.drivers.keys()].sort();
  }
}
