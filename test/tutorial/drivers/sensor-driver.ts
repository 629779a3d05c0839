import * as ddi from "../../../src/ddi/index.js";

/** The scriptable device's registers and STATUS bits (docs/testing.md). */
const Register = { addressLow: 0x08, addressHigh: 0x0c, length: 0x10, doorbell: 0x18, status: 0x1c };
const FROM_DEVICE = 2;
const DONE = 1;
const ERROR = 2;

/** A sensor that DMAs a block of samples into each read buffer: one sensor, one read at a time. */
@ddi.injectable()
export class SensorDriver implements ddi.DriverContribution {
  @ddi.inject(ddi.Kernel) private readonly k!: ddi.Kernel;
  readonly serviceName = "sensor";
  readonly hardwareIds = ["PCI\\VEN_1B36&DEV_7E57"];
  private pdo?: ddi.DEVICE_OBJECT;
  private registers = 0;
  private registerLength = 0;
  private interrupt?: ddi.KINTERRUPT;
  private adapter?: ddi.DMA_ADAPTER;
  private list?: ddi.SCATTER_GATHER_LIST;

  DriverEntry(driver: ddi.DRIVER_OBJECT): ddi.NTSTATUS {
    driver.DriverExtension.AddDevice = (_driver, pdo) => this.addDevice(driver, pdo);
    driver.MajorFunction[ddi.IRP_MJ_PNP] = (fdo, irp) => this.pnp(fdo, irp);
    driver.MajorFunction[ddi.IRP_MJ_READ] = (fdo, irp) => this.read(fdo, irp);
    driver.DriverUnload = () => {};
    return ddi.STATUS_SUCCESS;
  }

  private addDevice(driver: ddi.DRIVER_OBJECT, pdo: ddi.DEVICE_OBJECT): ddi.NTSTATUS {
    const fdo = this.k.IoCreateDevice(driver, 0, undefined, ddi.FILE_DEVICE_UNKNOWN, 0, false).DeviceObject!;
    this.k.IoAttachDeviceToDeviceStack(fdo, pdo);
    fdo.Flags &= ~ddi.DO_DEVICE_INITIALIZING;
    this.pdo = pdo;
    return ddi.STATUS_SUCCESS;
  }

  private pnp(fdo: ddi.DEVICE_OBJECT, irp: ddi.IRP): ddi.NTSTATUS {
    const stack = this.k.IoGetCurrentIrpStackLocation(irp);
    if (stack.MinorFunction === ddi.IRP_MN_START_DEVICE) {
      irp.IoStatus.Status = this.start(fdo, stack);
    } else if (stack.MinorFunction === ddi.IRP_MN_REMOVE_DEVICE) {
      irp.IoStatus.Status = this.remove(fdo);
    }
    const status = irp.IoStatus.Status;
    this.k.IoCompleteRequest(irp, ddi.IO_NO_INCREMENT);
    return status;
  }

  /** START: map the registers, connect the interrupt, get a DMA adapter for a 32-bit bus master. */
  private start(fdo: ddi.DEVICE_OBJECT, stack: ddi.IO_STACK_LOCATION): ddi.NTSTATUS {
    for (const r of stack.Parameters.StartDevice!.AllocatedResourcesTranslated) {
      if (r.Type === "CmResourceTypeMemory") {
        this.registers = this.k.MmMapIoSpace(r.Start, r.Length, ddi.MmNonCached);
        this.registerLength = r.Length;
      } else {
        const { Vector: v, Level: l } = r;
        const isr = (): boolean => this.isr(fdo);
        const c = this.k.IoConnectInterrupt(isr, 0, undefined, v, l, l, ddi.LevelSensitive, false, 1, false);
        this.interrupt = c.InterruptObject;
      }
    }
    const description = ddi.zeroedDeviceDescription();
    description.Master = true;
    description.Dma32BitAddresses = true;
    description.InterfaceType = ddi.PCIBus;
    description.MaximumLength = 64 * 1024;
    this.adapter = this.k.IoGetDmaAdapter(this.pdo!, description).Adapter;
    this.k.IoInitializeDpcRequest(fdo, (_dpc, _fdo, irp, status) => this.dpc(fdo, irp!, status as number));
    const ok = this.registers !== 0 && this.interrupt !== undefined && this.adapter !== undefined;
    return ok ? ddi.STATUS_SUCCESS : ddi.STATUS_INSUFFICIENT_RESOURCES;
  }

  /** REMOVE: give back what START took, then leave the device stack. */
  private remove(fdo: ddi.DEVICE_OBJECT): ddi.NTSTATUS {
    if (this.interrupt !== undefined) this.k.IoDisconnectInterrupt(this.interrupt);
    this.adapter?.DmaOperations.PutDmaAdapter(this.adapter);
    if (this.registers !== 0) this.k.MmUnmapIoSpace(this.registers, this.registerLength);
    this.k.IoDetachDevice(this.pdo!);
    this.k.IoDeleteDevice(fdo);
    return ddi.STATUS_SUCCESS;
  }

  /** READ: map the buffer for the device (GetScatterGatherList runs at DISPATCH_LEVEL), then start it. */
  private read(fdo: ddi.DEVICE_OBJECT, irp: ddi.IRP): ddi.NTSTATUS {
    const mdl = irp.MdlAddress!;
    const adapter = this.adapter!;
    const va = this.k.MmGetMdlVirtualAddress(mdl);
    const length = this.k.MmGetMdlByteCount(mdl);
    this.k.IoMarkIrpPending(irp);
    fdo.CurrentIrp = irp;
    const program: ddi.DRIVER_LIST_CONTROL = (_fdo, _irp, list) => this.program(list);
    const ops = adapter.DmaOperations;
    const old = this.k.KeRaiseIrqlToDpcLevel();
    const status = ops.GetScatterGatherList(adapter, fdo, mdl, va, length, program, irp, false);
    this.k.KeLowerIrql(old);
    if (!ddi.NT_SUCCESS(status)) this.complete(fdo, irp, status, 0);
    return ddi.STATUS_PENDING;
  }

  /** Not a scatter/gather device: the HAL hands over one element, one range the device can reach. */
  private program(list: ddi.SCATTER_GATHER_LIST): void {
    const { Address, Length } = list.Elements[0]!;
    this.list = list;
    this.write(Register.addressLow, Address % 2 ** 32);
    this.write(Register.addressHigh, Math.floor(Address / 2 ** 32));
    this.write(Register.length, Length);
    this.write(Register.doorbell, FROM_DEVICE);
  }

  private isr(fdo: ddi.DEVICE_OBJECT): boolean {
    const status = this.k.READ_REGISTER_ULONG(this.registers + Register.status);
    if ((status & DONE) === 0) return false;
    this.write(Register.status, status);
    this.k.IoRequestDpc(fdo, fdo.CurrentIrp, status);
    return true;
  }

  /** DpcForIsr: put the list back (a bounced buffer is copied out here), then complete the read. */
  private dpc(fdo: ddi.DEVICE_OBJECT, irp: ddi.IRP, status: number): void {
    this.adapter!.DmaOperations.PutScatterGatherList(this.adapter!, this.list!, false);
    if ((status & ERROR) !== 0) this.complete(fdo, irp, ddi.STATUS_DEVICE_DATA_ERROR, 0);
    else this.complete(fdo, irp, ddi.STATUS_SUCCESS, this.k.MmGetMdlByteCount(irp.MdlAddress!));
  }

  private complete(fdo: ddi.DEVICE_OBJECT, irp: ddi.IRP, status: ddi.NTSTATUS, information: number): void {
    fdo.CurrentIrp = undefined;
    irp.IoStatus.Status = status;
    irp.IoStatus.Information = information;
    this.k.IoCompleteRequest(irp, ddi.IO_NO_INCREMENT);
  }

  private write(offset: number, value: number): void {
    this.k.WRITE_REGISTER_ULONG(this.registers + offset, value);
  }
}
