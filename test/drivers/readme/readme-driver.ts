// biome-ignore format: the README shows this file whole, so it is kept compact
import { type CM_PARTIAL_RESOURCE_DESCRIPTOR, DEVICE_DESCRIPTION_VERSION2, type DEVICE_OBJECT, DISPATCH_LEVEL, type DMA_ADAPTER, DO_DEVICE_INITIALIZING, type DRIVER_OBJECT, type DriverContribution, FILE_DEVICE_UNKNOWN, IO_NO_INCREMENT, type IRP, IRP_MJ_PNP, IRP_MJ_READ, IRP_MN_START_DEVICE, inject, injectable, Kernel, LevelSensitive, MmNonCached, PCIBus, type SCATTER_GATHER_LIST, STATUS_PENDING, STATUS_SUCCESS, zeroedDeviceDescription } from "../../../src/ddi/index.js";

/** IRP_MJ_READ on the legacy sample chip: its on-board buffer, by DMA, into the caller's pages. */
// biome-ignore format: the README shows this file whole, so it is kept compact
@injectable()
export class ReadmeDriver implements DriverContribution {
  readonly serviceName = "readme";
  readonly hardwareIds = ["PCI\\VEN_1234&DEV_0DDA"];
  #registers = 0;
  #adapter: DMA_ADAPTER | undefined;
  #pending: { irp: IRP; list: SCATTER_GATHER_LIST } | undefined;

  constructor(@inject(Kernel) private readonly k: Kernel) {}

  DriverEntry(driver: DRIVER_OBJECT): number {
    driver.DriverExtension.AddDevice = (_, pdo) => {
      const fdo = this.k.IoCreateDevice(driver, 0, undefined, FILE_DEVICE_UNKNOWN, 0, false).DeviceObject!;
      this.k.IoAttachDeviceToDeviceStack(fdo, pdo);
      fdo.DeviceExtension = pdo;
      fdo.Flags &= ~DO_DEVICE_INITIALIZING;
      return STATUS_SUCCESS;
    };
    driver.MajorFunction[IRP_MJ_PNP] = (fdo, irp) => {
      const stack = this.k.IoGetCurrentIrpStackLocation(irp);
      if (stack.MinorFunction === IRP_MN_START_DEVICE) this.start(fdo, stack.Parameters.StartDevice!.AllocatedResourcesTranslated);
      return this.complete(irp, 0);
    };
    driver.MajorFunction[IRP_MJ_READ] = (fdo, irp) => {
      const [adapter, mdl] = [this.#adapter!, irp.MdlAddress!];
      this.k.IoMarkIrpPending(irp);
      const irql = this.k.KeRaiseIrql(DISPATCH_LEVEL); // where GetScatterGatherList runs
      adapter.DmaOperations.GetScatterGatherList(adapter, fdo, mdl, this.k.MmGetMdlVirtualAddress(mdl),
        this.k.MmGetMdlByteCount(mdl), (_fdo, _irp, list) => this.program(irp, list), undefined, false);
      this.k.KeLowerIrql(irql);
      return STATUS_PENDING;
    };
    return STATUS_SUCCESS;
  }

  start(fdo: DEVICE_OBJECT, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): void {
    for (const r of resources) {
      if (r.Type === "CmResourceTypeMemory") this.#registers = this.k.MmMapIoSpace(r.Start, r.Length, MmNonCached);
      else this.k.IoConnectInterrupt(() => this.isr(fdo), 0, undefined, r.Vector, r.Level, r.Level, LevelSensitive, false, 1, false);
    }
    this.k.IoInitializeDpcRequest(fdo, () => this.dpc());
    const description = zeroedDeviceDescription(); // the truth about the chip: 32 address lines, no scatter/gather
    Object.assign(description, { Version: DEVICE_DESCRIPTION_VERSION2, Master: true, Dma32BitAddresses: true, InterfaceType: PCIBus, MaximumLength: 0x10000 });
    this.#adapter = this.k.IoGetDmaAdapter(fdo.DeviceExtension as DEVICE_OBJECT, description).Adapter;
  }

  program(irp: IRP, list: SCATTER_GATHER_LIST): void {
    this.#pending = { irp, list }; // one element below 4 GiB: a bounce page or an IOVA, the HAL decides
    this.k.WRITE_REGISTER_ULONG(this.#registers + 0x00, list.Elements[0]!.Address); // ADDRESS
    this.k.WRITE_REGISTER_ULONG(this.#registers + 0x08, list.Elements[0]!.Length); // LENGTH
    this.k.WRITE_REGISTER_ULONG(this.#registers + 0x0c, 0b11); // CONTROL: START | TO_MEMORY
  }

  isr(fdo: DEVICE_OBJECT): boolean {
    if ((this.k.READ_REGISTER_ULONG(this.#registers + 0x10) & 0b10) === 0) return false; // STATUS: DONE?
    this.k.WRITE_REGISTER_ULONG(this.#registers + 0x10, 0b1110); // acknowledge
    this.k.IoRequestDpc(fdo, undefined, undefined);
    return true;
  }

  dpc(): void {
    const { irp, list } = this.#pending!;
    this.#adapter!.DmaOperations.PutScatterGatherList(this.#adapter!, list, false); // before the data is read
    this.complete(irp, list.Elements[0]!.Length);
  }

  complete(irp: IRP, information: number): number {
    irp.IoStatus.Status = STATUS_SUCCESS;
    irp.IoStatus.Information = information;
    this.k.IoCompleteRequest(irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
  }
}
