"""SCons builder: compile with arm-none-eabi-gcc, link with the project's linker script, print the size,
and run the ELF in QEMU as the "upload" target (semihosting output, -icount shift=0 for exact counts)."""

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()

env.Replace(
    AR="arm-none-eabi-gcc-ar", AS="arm-none-eabi-as", CC="arm-none-eabi-gcc", CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy", RANLIB="arm-none-eabi-gcc-ranlib", SIZETOOL="arm-none-eabi-size",
    PROGSUFFIX=".elf", SIZEPRINTCMD="$SIZETOOL -B $SOURCES",
)
cpu = ["-mcpu=%s" % board.get("build.cpu"), "-mthumb"] + board.get("build.fpu_flags", "").split()
env.Append(
    ASFLAGS=cpu,
    CCFLAGS=cpu + ["-ffunction-sections", "-fdata-sections"],
    # the linker script comes from board_build.ldscript (PlatformIO adds -T for it)
    LINKFLAGS=cpu + ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections"],
)
elf = env.BuildProgram()
size = env.Alias("size", elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(size)
qemu = ("qemu-system-arm -M %s -nographic -monitor none -serial none "
        "-semihosting-config enable=on,target=native -icount shift=0 -kernel $SOURCE") % board.get("debug.qemu_machine")
upload = env.Alias("upload", elf, env.VerboseAction(qemu, "Running $SOURCE in QEMU (%s)" % board.get("debug.qemu_machine")))
AlwaysBuild(upload)
Default([elf, size])
