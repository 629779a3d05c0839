/** The numbers of include/uapi/linux/vfio.h the model uses (iommu-anchors §8). */

/** VFIO_GET_API_VERSION. */
export const VFIO_API_VERSION = 0;

/** IOMMU backend types (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU). */
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_NOIOMMU_IOMMU = 8;

/** vfio_iommu_type1_dma_map.flags: READ and WRITE from the device's side. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;

/** vfio_group_status.flags. */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/** vfio_iommu_type1_info.flags. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;

/** vfio_device_info.flags. */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;

/** vfio-pci region indexes (BARs 0-5, ROM 6, config 7, VGA 8) and IRQ indexes (INTx 0 ... 4). */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_NUM_IRQS = 5;

/** vfio_region_info.flags. */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;

/** type1's dma_entry_limit module parameter: mappings per container (CVE-2019-3882). */
export const DEFAULT_DMA_ENTRY_LIMIT = 65535;
